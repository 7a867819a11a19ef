//! TIFF vectors made with Pillow 13.0.0 (tests/data/formats/tiff/README.md)
//! and hand-built files.
