//! portcullis-config: under construction.
