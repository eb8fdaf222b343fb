//! Integration tests for `hvseed inventory` (see the module's own tests below).
