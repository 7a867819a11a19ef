use super::*;

#[test]
fn sub_samples_are_read_most_significant_first() {
    assert_eq!(sub_sample(&[0b1000_0001], 0, 1), 1);
    assert_eq!(sub_sample(&[0b1000_0001], 7, 1), 1);
    assert_eq!(sub_sample(&[0b1000_0001], 6, 1), 0);
    assert_eq!(sub_sample(&[0b1101_0010], 1, 2), 0b01);
    assert_eq!(sub_sample(&[0xa5], 1, 4), 5);
}
