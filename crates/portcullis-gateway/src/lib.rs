//! portcullis-gateway: under construction.
