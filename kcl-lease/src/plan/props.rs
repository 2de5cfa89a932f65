//! Property tests of the planners (filled below).
