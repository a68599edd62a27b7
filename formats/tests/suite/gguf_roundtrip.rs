//! Property test: GGUF write → read round trip of random metadata and tensors (a fixed-seed
//! generator, 300 cases): every key, value, tensor name, shape, type and data byte comes back.

use llq_formats::gguf::{self, Array, GgufWriter, TensorSpec, Value};
use llq_types::GgmlType;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn string(&mut self, max: u64) -> String {
        let alphabet = ["a", "Z", "0", ".", "_", " ", "▁", "é", "\u{1F600}", "\n"];
        (0..self.below(max + 1))
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
    /// A finite float (NaN would not compare equal to itself).
    fn f64(&mut self) -> f64 {
        let v = f64::from_bits(self.next());
        if v.is_finite() {
            v
        } else {
            self.below(1000) as f64 - 500.5
        }
    }
}

fn random_value(rng: &mut Rng, allow_array: bool) -> Value {
    let n = |rng: &mut Rng| rng.below(6) as usize;
    match rng.below(if allow_array { 13 } else { 12 }) {
        0 => Value::U8(rng.next() as u8),
        1 => Value::I8(rng.next() as i8),
        2 => Value::U16(rng.next() as u16),
        3 => Value::I16(rng.next() as i16),
        4 => Value::U32(rng.next() as u32),
        5 => Value::I32(rng.next() as i32),
        6 => Value::F32(rng.f64() as f32),
        7 => Value::Bool(rng.next() & 1 == 1),
        8 => Value::String(rng.string(20)),
        9 => Value::U64(rng.next()),
        10 => Value::I64(rng.next() as i64),
        11 => Value::F64(rng.f64()),
        _ => Value::Array(match rng.below(12) {
            0 => Array::U8((0..n(rng)).map(|_| rng.next() as u8).collect()),
            1 => Array::I8((0..n(rng)).map(|_| rng.next() as i8).collect()),
            2 => Array::U16((0..n(rng)).map(|_| rng.next() as u16).collect()),
            3 => Array::I16((0..n(rng)).map(|_| rng.next() as i16).collect()),
            4 => Array::U32((0..n(rng)).map(|_| rng.next() as u32).collect()),
            5 => Array::I32((0..n(rng)).map(|_| rng.next() as i32).collect()),
            6 => Array::F32((0..n(rng)).map(|_| rng.f64() as f32).collect()),
            7 => Array::Bool((0..n(rng)).map(|_| rng.next() & 1 == 1).collect()),
            8 => Array::String((0..n(rng)).map(|_| rng.string(8)).collect()),
            9 => Array::U64((0..n(rng)).map(|_| rng.next()).collect()),
            10 => Array::I64((0..n(rng)).map(|_| rng.next() as i64).collect()),
            _ => Array::F64((0..n(rng)).map(|_| rng.f64()).collect()),
        }),
    }
}

const TYPES: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
    GgmlType::Q2_K,
];

#[test]
fn random_files_round_trip() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in 0..300 {
        let mut metadata: Vec<(String, Value)> = (0..rng.below(12))
            .map(|i| {
                (
                    format!("k{i}.{}", rng.string(10)),
                    random_value(&mut rng, true),
                )
            })
            .collect();
        if rng.below(4) == 0 {
            let align = 1u32 << rng.below(8);
            metadata.push((gguf::ALIGNMENT_KEY.into(), Value::U32(align)));
        }
        let tensors: Vec<TensorSpec> = (0..rng.below(6))
            .map(|i| {
                let ty = TYPES[rng.below(TYPES.len() as u64) as usize];
                let block = ty.block_size() as u64;
                let mut dims = vec![block * rng.below(3)];
                for _ in 0..rng.below(4) {
                    dims.push(1 + rng.below(3));
                }
                TensorSpec {
                    name: format!("t{i}.{}", rng.string(3)).chars().take(20).collect(),
                    dims,
                    ty,
                }
            })
            .collect();
        let sizes: Vec<u64> = tensors
            .iter()
            .map(|t| {
                let n: u64 = t.dims.iter().product();
                n / t.ty.block_size() as u64 * t.ty.type_size() as u64
            })
            .collect();
        let data: Vec<u8> = (0..sizes.iter().sum::<u64>())
            .map(|_| rng.next() as u8)
            .collect();
        let mut w = GgufWriter::new(Vec::new(), &metadata, &tensors)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        let chunk = 1 + rng.below(100) as usize;
        for piece in data.chunks(chunk) {
            w.write_tensor_data(piece).unwrap();
        }
        let bytes = w.finish().unwrap();

        let h = gguf::parse(&bytes).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(h.metadata, metadata, "case {case}");
        assert_eq!(h.tensors.len(), tensors.len());
        let mut at = 0usize;
        for ((got, want), size) in h.tensors.iter().zip(&tensors).zip(&sizes) {
            assert_eq!(got.name, want.name, "case {case}");
            assert_eq!(got.dims, want.dims, "case {case}");
            assert_eq!(got.ty, want.ty, "case {case}");
            assert_eq!(got.n_bytes(), *size);
            let start = (h.data_offset + got.offset) as usize;
            assert_eq!(start as u64 % h.alignment, 0);
            assert_eq!(
                &bytes[start..start + *size as usize],
                &data[at..at + *size as usize],
                "case {case}: data of {}",
                got.name
            );
            at += *size as usize;
        }
    }
}
