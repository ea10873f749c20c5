//! Server-sent events decoding. (Being written.)
