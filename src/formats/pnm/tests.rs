use super::*;

#[test]
fn python_int() {
    assert_eq!(py_int(b"+5"), Some(5));
    assert_eq!(py_int(b"1_0"), Some(10));
    assert_eq!(py_int(b"-0"), Some(0));
    assert_eq!(py_int(b"1__0"), None);
    assert_eq!(py_int(b"_1"), None);
    assert_eq!(py_int(b"1_"), None);
    assert_eq!(py_int(b"0x1"), None);
    assert_eq!(py_int(b""), None);
    assert_eq!(py_int(b"+"), None);
}
