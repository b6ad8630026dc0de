"""`occworld-tokyo view`: a session or a forecast folder in the rerun viewer (optional extra: pip install .[viz])."""
