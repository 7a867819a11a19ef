use super::*;

#[test]
fn the_ramp_needs_no_palette() {
    assert!(!palette_needed(&[0, 0, 0, 1, 1, 1]));
    assert!(palette_needed(&[0, 0, 0, 255, 255, 255]));
    assert!(palette_needed(&[0, 0, 0, 1, 1, 2]));
}
