//! eyas-hil-tests: the hawkBit test server and end-to-end scenario support.
