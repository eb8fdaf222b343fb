//! Integration tests for `hvseed render` (see the module's own tests below).
