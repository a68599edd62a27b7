//! A safetensors header naming the same tensor twice is refused: JSON would let the second entry
//! silently replace the first (here with a different dtype and shape over the same bytes).

#[test]
fn duplicate_tensor_names_in_one_header_are_refused() {
    let header = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend([0u8; 8]);
    let err = llq_formats::safetensors::parse(&bytes).expect_err("duplicate names accepted");
    assert!(err.contains("\"a\"") && err.contains("duplicate"), "{err}");
}
