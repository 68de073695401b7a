"""The kernel: errors, names, ids, paging, events and ports every other layer shares."""
