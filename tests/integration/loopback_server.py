"""The one threaded HTTP server the integration tests' fake origins build on.

The standard library's ThreadingHTTPServer listens with a backlog of 5. When a test sends ten
concurrent requests through ficus, ficus opens ten upstream connections at once; on a loaded
machine the accept thread falls behind, the kernel drops the SYNs beyond the backlog and the
client's retransmit comes a second later — past ficus's connect timeout, so the test sees a
502 that says nothing about ficus. A real origin listens with a deep backlog; so do these.
"""

import http.server


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True
