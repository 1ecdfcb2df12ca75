"""Drives the independent ouch-connect 5.0.1 client (softstream-link, Rust + pyo3) against a
server given as host:port: logs in, sends one Enter Order, waits for a System Event in a
Sequenced Data packet and prints it as one JSON line on stdout."""
import json
import sys

from links_connect.callbacks import MemoryStoreCallback
from ouch_connect import CltAuto

addr = sys.argv[1]
store = MemoryStoreCallback()
kw = dict(username="USER01", password="pw", session_id="S1", io_timeout=3.0)
with CltAuto(addr, store, name="clt", **kw) as clt:
    clt.send({"UPayload": {"EnterOrder": {
        "user_ref_number": 7, "side": "BUY", "quantity": 100, "symbol": "AAPL",
        "price": 150.25, "time_in_force": "MARKET_HOURS", "display": "VISIBLE",
        "capacity": "AGENCY", "int_mkt_sweep_eligibility": "ELIGIBLE",
        "cross_type": "CONTINUOUS_MARKET", "clt_order_id": "ORD7",
        "appendages": {"firm": "ABCD", "min_qty": 10},
    }}})
    found = store.find_recv(name="clt", filter={"SPayload": {"SystemEvent": {}}}, find_timeout=3.0)
    if found is None:
        sys.exit("ouch-connect client never received the System Event")
    print(json.dumps(found.msg, separators=(",", ":")), flush=True)
