//! portcullis-demo: under construction.
