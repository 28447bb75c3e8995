"""The reliability suite: whole instance lifecycles through the operator stand-in, under API faults and in random interleavings."""
