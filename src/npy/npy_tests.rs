//! Unit tests of the header parser and writer.

use super::header::*;
use super::*;

/// A v1.0 file prefix around `dict`, padded to 64 bytes as numpy does.
fn v1(dict: &str) -> Vec<u8> {
    with_version(1, dict)
}

fn with_version(major: u8, dict: &str) -> Vec<u8> {
    let len_field = if major == 1 { 2 } else { 4 };
    let mut text = dict.as_bytes().to_vec();
    while (8 + len_field + text.len() + 1) % 64 != 0 {
        text.push(b' ');
    }
    text.push(b'\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[major, 0]);
    out.extend_from_slice(&(text.len() as u32).to_le_bytes()[..len_field]);
    out.extend_from_slice(&text);
    out
}

fn parse_dict_text(dict: &str) -> Result<NpyHeader, NpyError> {
    parse_header(&v1(dict))
}

fn shapes() -> Vec<Vec<usize>> {
    let mut shapes = vec![
        vec![],
        vec![0],
        vec![1],
        vec![5],
        vec![3, 4],
        vec![2, 0, 3],
        vec![1; 35],
        vec![1; 36],
        vec![1; 37],
        vec![10usize.pow(19), 0],
        vec![usize::MAX, 0, usize::MAX],
        vec![7, 11, 13, 17, 19],
        vec![1 << 20, 1 << 10],
    ];
    // Every length of the first axis's digits, so the growth padding takes every
    // width, and so does the dict.
    // (Long first axes get an empty second one, so that every dtype fits.)
    for digits in 1..=19 {
        let second = usize::from(digits < 10);
        shapes.push(vec![10usize.pow(digits) - 1, second]);
    }
    shapes
}

#[test]
fn descr_and_size() {
    for d in DType::ALL {
        let descr = d.descr();
        assert_eq!(descr.len(), 3, "{descr}");
        assert_eq!(descr[2..].parse::<usize>().unwrap(), d.size());
        assert_eq!(descr.starts_with('|'), d.size() == 1, "{descr}");
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
        assert_eq!(parse_dict_text(&dict).map(|h| h.dtype), Ok(d));
    }
    assert_eq!(DType::F64.to_string(), "float64 ('<f8')");
}

#[test]
fn round_trip_every_dtype_and_shape() {
    for dtype in DType::ALL {
        for shape in shapes() {
            let bytes = header_bytes(dtype, &shape);
            assert_eq!(bytes.len() % 64, 0, "{dtype} {shape:?}");
            assert_eq!(bytes.last(), Some(&b'\n'));
            assert_eq!(&bytes[6..8], [1, 0]);
            let h = parse_header(&bytes).unwrap_or_else(|e| panic!("{dtype} {shape:?}: {e}"));
            assert_eq!(h.dtype, dtype);
            assert_eq!(h.shape, shape);
            assert!(!h.fortran_order);
            assert_eq!(h.data_offset, bytes.len());
            // The data may follow the header; parsing ignores it.
            let mut file = bytes.clone();
            file.extend_from_slice(&[0xAB; 100]);
            assert_eq!(parse_header(&file), Ok(h));
        }
    }
}

#[test]
fn header_bytes_matches_numpy() {
    // Copied from `np.save(f, np.zeros((3, 4)))`, numpy 2.4.
    let mut expected =
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"
            .to_vec();
    expected.resize(127, b' ');
    expected.push(b'\n');
    assert_eq!(header_bytes(DType::F64, &[3, 4]), expected);

    // And the fixtures np.save wrote, header for header.
    let fixtures: [(&[u8], DType, &[usize]); 8] = [
        (
            include_bytes!("../../tests/fixtures/npy/f64_2d.npy"),
            DType::F64,
            &[3, 4],
        ),
        (
            include_bytes!("../../tests/fixtures/npy/scalar_f64.npy"),
            DType::F64,
            &[],
        ),
        (
            include_bytes!("../../tests/fixtures/npy/bool_1d.npy"),
            DType::Bool,
            &[3],
        ),
        (
            include_bytes!("../../tests/fixtures/npy/i8_1d.npy"),
            DType::I8,
            &[4],
        ),
        (
            include_bytes!("../../tests/fixtures/npy/u64_1d.npy"),
            DType::U64,
            &[3],
        ),
        (
            include_bytes!("../../tests/fixtures/npy/i32_3d.npy"),
            DType::I32,
            &[2, 3, 4],
        ),
        (
            include_bytes!("../../tests/fixtures/npy/empty_2x0x3_f32.npy"),
            DType::F32,
            &[2, 0, 3],
        ),
        (
            include_bytes!("../../tests/fixtures/npy/pad64_i32.npy"),
            DType::I32,
            &[
                2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                1, 1, 1, 1, 1, 1, 1, 1,
            ],
        ),
    ];
    for (file, dtype, shape) in fixtures {
        let ours = header_bytes(dtype, shape);
        assert_eq!(
            ours.escape_ascii().to_string(),
            file[..ours.len()].escape_ascii().to_string()
        );
        assert_eq!(parse_header(file).unwrap().data_offset, ours.len());
    }
}

#[test]
fn full_padding_when_the_dict_ends_on_the_boundary() {
    // The dict plus preamble plus '\n' is a multiple of 64: numpy pads 64 spaces, not 0.
    let shape = [[2].as_slice(), &[1; 35]].concat();
    let bytes = header_bytes(DType::I32, &shape);
    assert_eq!(bytes.len(), 256);
    assert!(bytes.ends_with(&[[b' '; 64].as_slice(), b"\n"].concat()));
}

#[test]
fn version_2_when_the_dict_outgrows_u16() {
    let shape = vec![1; 30_000];
    let bytes = header_bytes(DType::U16, &shape);
    assert_eq!(&bytes[6..8], [2, 0]);
    assert_eq!(bytes.len() % 64, 0);
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert_eq!(12 + len, bytes.len());
    let h = parse_header(&bytes).unwrap();
    assert_eq!(
        (h.dtype, h.shape.len(), h.data_offset),
        (DType::U16, 30_000, bytes.len())
    );

    // The largest v1 header still is v1.
    let ok = header_bytes(DType::U8, &[1; 21_000]);
    assert_eq!((&ok[6..8], ok.len()), (&[1, 0][..], 63_104));
}

#[test]
fn tolerated_variations() {
    let cases: &[(&str, &[usize])] = &[
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
            &[3, 4],
        ),
        (
            "{'shape': (3, 4), 'fortran_order': False, 'descr': '<f8'}",
            &[3, 4],
        ),
        (
            "{'fortran_order':False,'shape':(3,4,),'descr':'<f8',}",
            &[3, 4],
        ),
        (
            "  {\n\t'descr' : \"<f8\" ,\r\n 'fortran_order' :\x0cFalse, 'shape' : ( 3 , 4 ) }",
            &[3, 4],
        ),
        (
            "{u'descr': u'<f8', u'fortran_order': False, u'shape': (3L, 4L), }",
            &[3, 4],
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
            &[],
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': ( ), }",
            &[],
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }",
            &[5],
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (5 , ), }",
            &[5],
        ),
        (
            "{'descr': '=f8', 'fortran_order': False, 'shape': (5,), }",
            &[5],
        ),
        (
            "{'descr': '|f8', 'fortran_order': False, 'shape': (5,), }",
            &[5],
        ),
        (
            "{'descr': 'f8', 'fortran_order': False, 'shape': (5,), }",
            &[5],
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 0), }",
            &[usize::MAX, 0],
        ),
    ];
    for (dict, shape) in cases {
        let h = parse_dict_text(dict).unwrap_or_else(|e| panic!("{dict}: {e}"));
        assert_eq!(
            (h.dtype, h.shape.as_slice()),
            (DType::F64, *shape),
            "{dict}"
        );
    }
    // Byte order is moot for one-byte types.
    for descr in ["|u1", "<u1", ">u1", "=u1", "u1"] {
        let h = parse_dict_text(&format!(
            "{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,)}}"
        ));
        assert_eq!(h.map(|h| h.dtype), Ok(DType::U8), "{descr}");
    }
    let h = parse_dict_text("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3)}").unwrap();
    assert!(h.fortran_order);
}

#[test]
fn versions_2_and_3_and_old_16_byte_alignment() {
    let dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }";
    for major in [2, 3] {
        let bytes = with_version(major, dict);
        assert_eq!(bytes[6], major);
        let h = parse_header(&bytes).unwrap();
        assert_eq!((h.dtype, h.data_offset), (DType::I16, 128));
    }
    // numpy < 1.14 padded to 16 bytes only.
    let mut old = MAGIC.to_vec();
    old.extend_from_slice(&[1, 0, 70, 0]);
    old.extend_from_slice(b"{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }");
    old.resize(79, b' ');
    old.push(b'\n');
    assert_eq!(parse_header(&old).map(|h| h.data_offset), Ok(80));
}

fn malformed_reason(dict: &str) -> &'static str {
    match parse_dict_text(dict) {
        Err(NpyError::Malformed { reason, excerpt }) => {
            assert!(!excerpt.is_empty() || dict.trim().is_empty(), "{dict}");
            reason
        }
        other => panic!("{dict}: expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_dicts() {
    let cases = [
        ("", "the header is not a dict literal starting with '{'"),
        (
            "['descr', '<f8']",
            "the header is not a dict literal starting with '{'",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)",
            "expected ',' or '}' after a value",
        ),
        (
            "{'descr': '<f8' 'fortran_order': False, 'shape': (3,)}",
            "expected ',' or '}' after a value",
        ),
        (
            "{'descr' '<f8', 'fortran_order': False, 'shape': (3,)}",
            "expected ':' after a key",
        ),
        (
            "{descr: '<f8', 'fortran_order': False, 'shape': (3,)}",
            "expected a quoted key or '}'",
        ),
        (
            "{'descr': '<f8, 'fortran_order': False, 'shape': (3,)}",
            "expected ',' or '}' after a value",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
            "unknown key",
        ),
        (
            "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3,)}",
            "repeated key",
        ),
        (
            "{'fortran_order': False, 'shape': (3,)}",
            "the 'descr' key is missing",
        ),
        (
            "{'descr': '<f8', 'shape': (3,)}",
            "the 'fortran_order' key is missing",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False}",
            "the 'shape' key is missing",
        ),
        (
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}",
            "'fortran_order' must be True or False",
        ),
        (
            "{'descr': '<f8', 'fortran_order': Falsey, 'shape': (3,)}",
            "'fortran_order' must be True or False",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': [3, 4]}",
            "'shape' must be a tuple",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (5)}",
            "a 1-tuple needs a trailing comma, as in (5,)",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
            "'shape' must hold non-negative integers",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (,)}",
            "'shape' must hold non-negative integers",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3.0,)}",
            "expected ',' or ')' in 'shape'",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3 4)}",
            "expected ',' or ')' in 'shape'",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} x",
            "unexpected text after the dict",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}}",
            "unexpected text after the dict",
        ),
        (
            "{'descr': [('a', '<i4'), 'fortran_order': False, 'shape': (3,)}",
            "unterminated 'descr' value",
        ),
        (
            "{'descr': ('a']), 'fortran_order': False, 'shape': (3,)}",
            "unbalanced brackets",
        ),
        (
            "{'descr': , 'fortran_order': False, 'shape': (3,)}",
            "expected a value for 'descr'",
        ),
        (
            "{'descr': u<f8, 'fortran_order': False, 'shape': (3,)}",
            "expected a type string",
        ),
        ("{,}", "expected a quoted key or '}'"),
    ];
    for (dict, reason) in cases {
        assert_eq!(malformed_reason(dict), reason, "{dict}");
    }
    // A newline inside a string.
    assert_eq!(
        malformed_reason("{'descr': '<f8\n', }"),
        "unterminated string"
    );
    // An excerpt shows where, escaped.
    let err = parse_dict_text("{'descr': '<f8', 'fortran_order': Nope\u{e9}, 'shape': (3,)}")
        .unwrap_err();
    assert!(err.to_string().contains("Nope\\xc3\\xa9"), "{err}");
}

#[test]
fn every_error_variant() {
    let good = header_bytes(DType::F64, &[3, 4]);

    let err = parse_header(b"PK\x03\x04\x14\x00\x00\x00").unwrap_err();
    assert_eq!(
        err,
        NpyError::BadMagic {
            found: b"PK\x03\x04\x14\x00".to_vec()
        }
    );
    assert!(err.to_string().contains("PK\\x03\\x04"), "{err}");
    assert!(matches!(
        parse_header(b"\x93NUMPX"),
        Err(NpyError::BadMagic { .. })
    ));
    assert!(matches!(parse_header(b"x"), Err(NpyError::BadMagic { .. })));

    for (major, minor) in [(0, 0), (1, 1), (2, 1), (4, 0), (255, 255)] {
        let mut bytes = good.clone();
        bytes[6..8].copy_from_slice(&[major, minor]);
        assert_eq!(
            parse_header(&bytes),
            Err(NpyError::UnsupportedVersion { major, minor })
        );
    }

    assert_eq!(
        parse_header(b""),
        Err(NpyError::Truncated {
            needed: 10,
            have: 0
        })
    );
    assert_eq!(
        parse_header(b"\x93NUMPY\x02\x00\x00"),
        Err(NpyError::Truncated {
            needed: 12,
            have: 9
        })
    );
    assert_eq!(
        parse_header(&good[..100]),
        Err(NpyError::Truncated {
            needed: 128,
            have: 100
        })
    );
    // A v2 header claiming 4 GiB.
    let huge = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{";
    assert_eq!(
        parse_header(huge),
        Err(NpyError::Truncated {
            needed: 12 + u64::from(u32::MAX),
            have: 13
        })
    );

    assert!(matches!(
        parse_dict_text("{}"),
        Err(NpyError::Malformed { .. })
    ));

    let unsupported = |descr: &str| match parse_dict_text(&format!(
        "{{'descr': {descr}, 'fortran_order': False, 'shape': (3,)}}"
    )) {
        Err(NpyError::UnsupportedDType { descr }) => descr,
        other => panic!("{descr}: {other:?}"),
    };
    for descr in [
        "'<c16'",
        "'|O'",
        "'<f2'",
        "'<U5'",
        "'|S3'",
        "'<M8[ns]'",
        "'|V8'",
        "'<f16'",
        "'<d'",
        "'?'",
        "''",
        "'<i8 '",
    ] {
        assert_eq!(unsupported(descr), descr);
    }
    assert_eq!(
        unsupported("[('a', '<i4'), ('b', '<f8')]"),
        "[('a', '<i4'), ('b', '<f8')]"
    );
    assert_eq!(
        unsupported("{'names': ['a'], 'formats': ['<i4']}"),
        "{'names': ['a'], 'formats': ['<i4']}"
    );
    assert_eq!(unsupported("('<f8', (2, 3))"), "('<f8', (2, 3))");
    assert_eq!(unsupported("5"), "5");
    let long = format!("[{}]", "('field', '<f8'), ".repeat(20));
    assert!(unsupported(&long).ends_with("..."));
    let err =
        parse_dict_text("{'descr': '<c16', 'fortran_order': False, 'shape': (3,)}").unwrap_err();
    assert!(
        err.to_string().starts_with("unsupported dtype '<c16': "),
        "{err}"
    );

    for descr in [">f8", ">i2", ">u8", ">b1x"] {
        let res = parse_dict_text(&format!(
            "{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,)}}"
        ));
        if descr == ">b1x" {
            assert!(matches!(res, Err(NpyError::UnsupportedDType { .. })));
        } else {
            assert_eq!(
                res,
                Err(NpyError::BigEndian {
                    descr: descr.into()
                })
            );
        }
    }
    assert!(
        NpyError::BigEndian {
            descr: ">f8".into()
        }
        .to_string()
        .contains("'>f8'")
    );

    let err = parse_dict_text(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999, 2)}",
    )
    .unwrap_err();
    assert_eq!(
        err,
        NpyError::ShapeOverflow {
            shape: "(99999999999999999999999, 2)".into()
        }
    );
    for shape in ["(4294967296, 4294967296)", "(1152921504606846976,)"] {
        let res = parse_dict_text(&format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}}}"
        ));
        assert_eq!(
            res,
            Err(NpyError::ShapeOverflow {
                shape: shape.into()
            })
        );
    }
    // The same element count is fine for one-byte elements.
    let res = parse_dict_text(
        "{'descr': '|u1', 'fortran_order': False, 'shape': (1152921504606846976,)}",
    );
    assert_eq!(res.map(|h| h.shape), Ok(vec![1 << 60]));

    // What validate_for refuses.
    let h = parse_header(&good).unwrap();
    let len = good.len() as u64 + 96;
    assert_eq!(validate_for::<f64>(&h, len), Ok(()));
    assert_eq!(
        validate_for::<i64>(&h, len),
        Err(NpyError::DTypeMismatch {
            found: DType::F64,
            requested: DType::I64
        })
    );
    assert_eq!(
        NpyError::DTypeMismatch {
            found: DType::F64,
            requested: DType::I64
        }
        .to_string(),
        "dtype mismatch: the file holds float64 ('<f8'), the caller asked for int64 ('<i8')"
    );
    assert_eq!(
        validate_for::<f64>(&h, len - 1),
        Err(NpyError::DataTruncated {
            needed: len,
            have: len - 1
        })
    );
    assert_eq!(
        validate_for::<f64>(&h, 0),
        Err(NpyError::DataTruncated {
            needed: len,
            have: 0
        })
    );
    let fortran = NpyHeader {
        fortran_order: true,
        ..h.clone()
    };
    assert_eq!(
        validate_for::<f64>(&fortran, len),
        Err(NpyError::FortranOrder {
            shape: "(3, 4)".into()
        })
    );
    let odd = NpyHeader {
        data_offset: 124,
        ..h.clone()
    };
    assert_eq!(
        validate_for::<f64>(&odd, len),
        Err(NpyError::Misaligned {
            offset: 124,
            align: align_of::<f64>()
        })
    );
    let huge = NpyHeader {
        shape: vec![usize::MAX, 2],
        ..h.clone()
    };
    assert_eq!(
        validate_for::<f64>(&huge, u64::MAX),
        Err(NpyError::ShapeOverflow {
            shape: "(18446744073709551615, 2)".into()
        })
    );
    let end = NpyHeader {
        data_offset: usize::MAX - 7,
        shape: vec![(isize::MAX as usize) / 8],
        ..h
    };
    assert!(matches!(
        validate_for::<f64>(&end, u64::MAX),
        Err(NpyError::ShapeOverflow { .. }) | Err(NpyError::DataTruncated { .. })
    ));
}

#[test]
fn fortran_order_that_lays_out_as_c_is_accepted() {
    let h = |shape: &[usize]| NpyHeader {
        dtype: DType::U8,
        shape: shape.to_vec(),
        fortran_order: true,
        data_offset: 64,
    };
    for shape in [
        &[][..],
        &[5],
        &[1, 5],
        &[5, 1],
        &[1, 1, 7, 1],
        &[3, 0, 4],
        &[0],
    ] {
        assert_eq!(validate_for::<u8>(&h(shape), 1000), Ok(()), "{shape:?}");
    }
    for shape in [&[2, 3][..], &[1, 2, 3], &[2, 1, 2]] {
        assert!(
            matches!(
                validate_for::<u8>(&h(shape), 1000),
                Err(NpyError::FortranOrder { .. })
            ),
            "{shape:?}"
        );
    }
}

#[test]
fn len_is_empty_and_data_bytes() {
    let h = |shape: &[usize], dtype| NpyHeader {
        dtype,
        shape: shape.to_vec(),
        fortran_order: false,
        data_offset: 64,
    };
    assert_eq!(h(&[], DType::F64).len(), Ok(1));
    assert_eq!(h(&[], DType::F64).data_bytes(), Ok(8));
    assert!(!h(&[], DType::F64).is_empty());
    assert_eq!(h(&[3, 4], DType::I16).data_bytes(), Ok(24));
    assert_eq!(h(&[usize::MAX, 0], DType::F64).len(), Ok(0));
    assert!(h(&[usize::MAX, 0], DType::F64).is_empty());
    let max = isize::MAX as usize;
    assert_eq!(h(&[max], DType::U8).data_bytes(), Ok(max));
    assert!(h(&[max / 2 + 1], DType::U16).data_bytes().is_err());
    assert!(h(&[max / 2 + 1], DType::U16).len().is_err());
    assert_eq!(
        h(&[1 << 40, 1 << 30], DType::U8).len(),
        Err(NpyError::ShapeOverflow {
            shape: "(1099511627776, 1073741824)".into()
        })
    );
    assert_eq!(
        h(&[usize::MAX], DType::Bool).len().unwrap_err().to_string(),
        "array of shape (18446744073709551615,) is too large for this machine's address space"
    );
}

#[test]
fn every_prefix_of_a_header_is_truncated() {
    for (dtype, shape) in [
        (DType::F64, vec![3, 4]),
        (DType::U8, vec![]),
        (DType::I32, vec![1; 40]),
    ] {
        for major in [1, 2] {
            let mut bytes = header_bytes(dtype, &shape);
            if major == 2 {
                let dict = std::str::from_utf8(&bytes[10..]).unwrap();
                bytes = with_version(2, dict.trim_end());
            }
            let full = parse_header(&bytes).unwrap();
            assert_eq!(full.data_offset, bytes.len());
            for n in 0..bytes.len() {
                match parse_header(&bytes[..n]) {
                    Err(NpyError::Truncated { needed, have }) => {
                        assert_eq!(have, n as u64);
                        assert!(
                            needed > have && needed <= bytes.len() as u64,
                            "{n}: {needed}"
                        );
                    }
                    other => panic!("prefix of {n} bytes: {other:?}"),
                }
            }
        }
    }
}

/// xorshift64*, to make reproducible garbage without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Pure noise, with and without a valid preamble.
    for _ in 0..20_000 {
        let len = rng.below(200);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && len >= 10 {
            bytes[..6].copy_from_slice(MAGIC);
            bytes[6..10].copy_from_slice(&[1, 0, (len - 10) as u8, 0]);
        }
        let _ = parse_header(&bytes);
    }
    // Valid headers with a few bytes changed to characters the grammar cares about.
    let alphabet = b"{}()[],:'\"\\ \n0123456789LuTrueFalse<>|=fiub\x00\xff";
    let seeds: Vec<Vec<u8>> = [
        header_bytes(DType::F64, &[3, 4]),
        header_bytes(DType::U8, &[]),
        v1("{'descr': [('a', '<i4'), ('b', [('c', '<f8')])], 'fortran_order': False, 'shape': (5,)}"),
    ]
    .into();
    for _ in 0..50_000 {
        let mut bytes = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = 10 + rng.below(bytes.len() - 10);
            bytes[at] = if rng.below(4) == 0 {
                rng.next() as u8
            } else {
                alphabet[rng.below(alphabet.len())]
            };
        }
        if let Ok(h) = parse_header(&bytes) {
            // Whatever parses is consistent.
            assert!(h.data_bytes().is_ok());
            assert!(h.data_offset <= bytes.len());
        }
        let cut = rng.below(bytes.len() + 1);
        let _ = parse_header(&bytes[..cut]);
    }
}
