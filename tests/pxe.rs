//! Integration tests for `hvseed pxe` (see the module's own tests below).
