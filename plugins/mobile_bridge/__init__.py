"""mobile_bridge: the back end for field apps (entry point ``observatory: mobile_bridge``).

Sign-up and devices (``devices``), form discovery (``forms``), push sync of offline batches
(``sync``), resumable media uploads with tus 1.0 (``tus``), edits with versions (``edits``), the
change feed with Server-Sent Events (``feed``) and webhooks (``webhooks``). Its tables are its
own (``db``), created at start-up. See docs/mobile.md.
"""
