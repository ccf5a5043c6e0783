"""Poetry services: the servers where Deferreds earn their keep (notebooks 06, 07, 10).

    transform       netstring transformation server, guarded dispatch, client  (06)
    proxy           caching proxy: succeed / maybeDeferred, shared and
                    cancellable upstream fetches                               (07)
    tagged          line backend with tagged, out-of-order replies, and the
                    client that multiplexes requests over one connection       (10)
    xmlrpc_gateway  twisted.web.xmlrpc gateway forwarding to the tagged backend (10)

Every server takes its ``reactor``; wire contracts are in DESIGN.md. Import the
submodules you need; this package imports nothing on its own.
"""
