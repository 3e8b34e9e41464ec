"""The steps of the pipeline as plain functions: explicit arguments, no doit, callable from a
test. The graph in tasks/graph/ decides when each runs."""
