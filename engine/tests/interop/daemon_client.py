"""Drives the independent ouch-connect 5.0.1 client (softstream-link, Rust + pyo3) against the
running petrel-engine given as host:port: logs in as ALICE, sends a Cancel Order for an order
that does not exist, waits for the Cancel Reject that comes back as sequenced data, and prints
it as one JSON line on stdout. The client logs out when the `with` block ends."""
import json
import sys

from links_connect.callbacks import MemoryStoreCallback
from ouch_connect import CltAuto

addr = sys.argv[1]
store = MemoryStoreCallback()
with CltAuto(addr, store, name="clt", username="ALICE", password="alice", session_id="PETREL", io_timeout=5.0) as clt:
    clt.send({"UPayload": {"CancelOrder": {"user_ref_number": 77, "quantity": 0}}})
    found = store.find_recv(name="clt", filter={"SPayload": {"CancelReject": {}}}, find_timeout=5.0)
    if found is None:
        sys.exit("ouch-connect client never received the Cancel Reject")
    print(json.dumps(found.msg, separators=(",", ":")), flush=True)
