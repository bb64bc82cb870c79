"""Test utilities (record and replay).  Nothing here can run on real data: the recording and
replay tables refuse a secure random source and a production ledger."""
