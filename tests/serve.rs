//! Integration tests for `hvseed serve` (see the module's own tests below).
