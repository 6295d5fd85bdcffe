//! Conversions between the store's [`SqlValue`] and PostgreSQL's binary wire format.
//!
//! Parameters are declared to the server with the type of the value bound to them (see
//! [`param_type`]), so binding needs no guessing: an `Int` is always sent as `int8`, a `Real` as
//! `float8`, `Text` as `text`. Only `Null` is declared `unknown` and left for the server to infer
//! from its context; it is sent as SQL NULL of whatever type the server settled on.
//! Columns come back as whatever the query produced and are decoded by [`Cell`].

use std::error::Error as StdError;

use tokio_postgres::types::{FromSql, ToSql, Type};

use crate::sql::db::SqlValue;

type BoxError = Box<dyn StdError + Sync + Send>;

/// The type a parameter holding `value` is declared with when the statement is prepared.
pub fn param_type(value: &SqlValue) -> Type {
    match value {
        SqlValue::Null => Type::UNKNOWN,
        SqlValue::Int(_) => Type::INT8,
        SqlValue::Real(_) => Type::FLOAT8,
        SqlValue::Text(_) => Type::TEXT,
        SqlValue::Blob(_) => Type::BYTEA,
    }
}

/// The parameter kind, the part of a value that decides which prepared statement fits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Int,
    Real,
    Text,
    Blob,
}

impl Kind {
    /// The kind of `value`.
    pub fn of(value: &SqlValue) -> Self {
        match value {
            SqlValue::Null => Kind::Null,
            SqlValue::Int(_) => Kind::Int,
            SqlValue::Real(_) => Kind::Real,
            SqlValue::Text(_) => Kind::Text,
            SqlValue::Blob(_) => Kind::Blob,
        }
    }
}

/// A typed NULL for each column type a Cairn statement can leave to inference.
static NULL_I64: Option<i64> = None;
static NULL_I32: Option<i32> = None;
static NULL_I16: Option<i16> = None;
static NULL_F64: Option<f64> = None;
static NULL_F32: Option<f32> = None;
static NULL_BOOL: Option<bool> = None;
static NULL_TEXT: Option<&str> = None;
static NULL_BYTES: Option<&[u8]> = None;

/// The Rust value that encodes `value` for a parameter the server declared as `ty`.
///
/// Non-null values were declared with their own type, so `ty` only matters for NULL: the
/// `postgres` crate checks that a value's Rust type accepts the parameter's SQL type even when
/// the value is NULL, so the NULL must be of a matching Rust type.
pub fn bind<'a>(value: &'a SqlValue, ty: &Type) -> Result<&'a (dyn ToSql + Sync), String> {
    Ok(match value {
        SqlValue::Int(i) => i,
        SqlValue::Real(f) => f,
        SqlValue::Text(s) => s,
        SqlValue::Blob(b) => b,
        SqlValue::Null => match *ty {
            Type::INT8 => &NULL_I64,
            Type::INT4 => &NULL_I32,
            Type::INT2 => &NULL_I16,
            Type::FLOAT8 => &NULL_F64,
            Type::FLOAT4 => &NULL_F32,
            Type::BOOL => &NULL_BOOL,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => &NULL_TEXT,
            Type::BYTEA => &NULL_BYTES,
            ref other => return Err(format!("cannot bind NULL to a parameter of type {other}")),
        },
    })
}

/// One column value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell(pub SqlValue);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let value = match *ty {
            Type::INT8 => SqlValue::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => SqlValue::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => SqlValue::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => SqlValue::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => SqlValue::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => SqlValue::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => SqlValue::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => decode_numeric(raw)?,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                SqlValue::Text(String::from_sql(&Type::TEXT, raw)?)
            }
            Type::BYTEA => SqlValue::Blob(raw.to_vec()),
            ref other => return Err(format!("unsupported column type {other}").into()),
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(SqlValue::Null))
    }

    fn accepts(_: &Type) -> bool {
        // Every type is accepted here and unsupported ones are refused in `from_sql` with a
        // message naming the type, which says more than the crate's generic mismatch error.
        true
    }
}

/// Decodes PostgreSQL's binary `numeric` (what `SUM` of a `bigint` column returns): a whole
/// number that fits becomes `Int`, anything else `Real`.
///
/// The format is four 16-bit header words (digit count, weight of the first digit in powers of
/// 10000, sign, display scale) followed by base-10000 digits.
fn decode_numeric(raw: &[u8]) -> Result<SqlValue, BoxError> {
    const NEGATIVE: u16 = 0x4000;
    const NAN: u16 = 0xC000;
    const POS_INF: u16 = 0xD000;
    const NEG_INF: u16 = 0xF000;

    let (header, body) = raw.split_at_checked(8).ok_or("malformed numeric value")?;
    let word = |i: usize| u16::from_be_bytes([header[2 * i], header[2 * i + 1]]);
    let (count, weight, sign) = (usize::from(word(0)), word(1) as i16, word(2));
    if body.len() != 2 * count {
        return Err("malformed numeric value".into());
    }
    let digits: Vec<u16> = body.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    match sign {
        NAN => return Ok(SqlValue::Real(f64::NAN)),
        POS_INF => return Ok(SqlValue::Real(f64::INFINITY)),
        NEG_INF => return Ok(SqlValue::Real(f64::NEG_INFINITY)),
        _ => {}
    }
    let negative = sign == NEGATIVE;
    // Digits at positions below zero are the fraction; a value without any is a whole number.
    let whole = digits.iter().enumerate().all(|(i, d)| i64::from(weight) - i as i64 >= 0 || *d == 0);
    if whole {
        let mut acc: Option<i128> = Some(0);
        for i in 0..=i64::from(weight).max(-1) {
            let digit = digits.get(i as usize).copied().unwrap_or(0);
            acc = acc.and_then(|a| a.checked_mul(10_000)).and_then(|a| a.checked_add(i128::from(digit)));
        }
        let signed = acc.map(|a| if negative { -a } else { a });
        if let Some(v) = signed.and_then(|a| i64::try_from(a).ok()) {
            return Ok(SqlValue::Int(v));
        }
    }
    let mut value = 0.0_f64;
    for (i, d) in digits.iter().enumerate() {
        value += f64::from(*d) * 10_000_f64.powi(i32::from(weight) - i as i32);
    }
    Ok(SqlValue::Real(if negative { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, 0].into_iter().chain(digits.iter().copied()) {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_decode_to_integers_when_whole() {
        assert_eq!(decode_numeric(&numeric(0, 0, &[])).unwrap(), SqlValue::Int(0));
        assert_eq!(decode_numeric(&numeric(0, 0, &[42])).unwrap(), SqlValue::Int(42));
        // 1_0000_0002 has digits [1, 0, 2] with the first worth 10000^2.
        assert_eq!(decode_numeric(&numeric(2, 0, &[1, 0, 2])).unwrap(), SqlValue::Int(1_0000_0002));
        // Trailing zero digit groups are omitted on the wire: 50000 is [5] at weight 1.
        assert_eq!(decode_numeric(&numeric(1, 0, &[5])).unwrap(), SqlValue::Int(50_000));
        assert_eq!(decode_numeric(&numeric(0, 0x4000, &[7])).unwrap(), SqlValue::Int(-7));
    }

    #[test]
    fn numerics_with_fractions_or_huge_values_decode_to_floats() {
        // 1.5 is [1, 5000] at weight 0.
        assert_eq!(decode_numeric(&numeric(0, 0, &[1, 5000])).unwrap(), SqlValue::Real(1.5));
        assert_eq!(decode_numeric(&numeric(10, 0, &[1])).unwrap(), SqlValue::Real(1e40));
        assert!(matches!(decode_numeric(&numeric(0, 0xC000, &[])).unwrap(), SqlValue::Real(f) if f.is_nan()));
        assert!(decode_numeric(&[0, 1]).is_err());
        assert!(decode_numeric(&numeric(0, 0, &[1])[..9]).is_err());
    }

    #[test]
    fn nulls_bind_with_the_inferred_type() {
        for ty in [Type::INT8, Type::INT4, Type::INT2, Type::FLOAT8, Type::BOOL, Type::TEXT] {
            assert!(bind(&SqlValue::Null, &ty).is_ok(), "{ty}");
        }
        assert!(bind(&SqlValue::Null, &Type::JSONB).is_err());
        assert_eq!(param_type(&SqlValue::Int(1)), Type::INT8);
        assert_eq!(param_type(&SqlValue::Null), Type::UNKNOWN);
    }
}
