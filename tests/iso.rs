//! Integration tests for `hvseed iso` (see the module's own tests below).
