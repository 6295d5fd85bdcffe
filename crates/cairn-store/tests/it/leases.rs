//! Leases on both backends: one holder at a time, takeover after expiry or release, and a cursor
//! that only the live holder moves and that outlives holders.

use std::sync::Arc;

use cairn_core::lease::{LeaseState, Leases};
use cairn_core::store::Store;

fn leases(store: &Arc<dyn Store>) -> Arc<dyn Leases> {
    store.clone().leases().expect("the SQL store keeps leases")
}

pub async fn one_holder_at_a_time_and_the_cursor_outlives_holders(store: Arc<dyn Store>) {
    let leases = leases(&store);
    let minute = 60_000;
    let fresh = Some(LeaseState { cursor: None });
    assert_eq!(leases.acquire_lease("job", "a", minute).await.unwrap(), fresh);
    assert_eq!(leases.acquire_lease("job", "b", minute).await.unwrap(), None, "a holds it");
    assert_eq!(leases.acquire_lease("other-job", "b", minute).await.unwrap(), fresh, "leases are per name");
    assert_eq!(leases.acquire_lease("job", "a", minute).await.unwrap(), fresh, "a renews");
    assert!(leases.advance_lease("job", "a", 41, minute).await.unwrap());
    assert!(!leases.advance_lease("job", "b", 99, minute).await.unwrap(), "only the holder moves the cursor");
    leases.release_lease("job", "b").await.unwrap();
    assert_eq!(leases.acquire_lease("job", "b", minute).await.unwrap(), None, "b cannot release a's lease");

    leases.release_lease("job", "a").await.unwrap();
    assert!(!leases.advance_lease("job", "a", 50, minute).await.unwrap(), "released");
    assert_eq!(leases.acquire_lease("job", "b", 0).await.unwrap(), Some(LeaseState { cursor: Some(41) }));
    // b's lease of no length has already expired, as a crashed holder's does.
    assert!(!leases.advance_lease("job", "b", 60, minute).await.unwrap());
    assert_eq!(leases.acquire_lease("job", "a", minute).await.unwrap(), Some(LeaseState { cursor: Some(41) }));
    assert!(store.verify_audit().await.unwrap().is_ok());
}

macro_rules! lease_cases {
    ($fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $fixture().await;
                super::$case(store).await;
            }
        )*
    };
}

mod sqlite {
    lease_cases!(crate::sqlite::fixture; one_holder_at_a_time_and_the_cursor_outlives_holders);
}

mod postgres {
    lease_cases!(crate::postgres::fixture; one_holder_at_a_time_and_the_cursor_outlives_holders);
}
