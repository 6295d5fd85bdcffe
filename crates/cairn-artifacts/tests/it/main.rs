//! Integration tests for cairn-artifacts: one binary, one module per backend, shared cases.
//!
//! The S3 tests need an S3-protocol server; see `common/s3_server.rs` (or the crate README) for
//! the `CAIRN_TEST_S3_ENDPOINT` / `CAIRN_TEST_VENV` contract. Without one they fail, loudly.

mod cases;
mod common;
mod local;
mod s3;

/// Declares one `#[tokio::test]` per named case in `cases`, each on a fresh store from `$setup`
/// (an async fn returning a fixture with a `store` field).
macro_rules! shared_cases {
    ($setup:ident: $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $setup().await;
                crate::cases::$case(&fixture.store).await;
            }
        )*
    };
}
pub(crate) use shared_cases;
