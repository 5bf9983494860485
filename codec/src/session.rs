//! Sans-IO request/reply/dump bookkeeping: sequence numbers, port ids, DONE, ERROR, DUMP_INTR.
