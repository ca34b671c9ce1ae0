//! portcullis-detect: under construction.
