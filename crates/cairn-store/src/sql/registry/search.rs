//! Registry searches: the statement is compiled by `sql::search::registry` (with the other
//! searches, sharing their binding and comparison rules); this module hydrates the page.

use std::collections::HashMap;

use cairn_core::Result;
use cairn_core::model::Page;
use cairn_core::registry::{ModelVersion, ModelVersionQuery, RegisteredModel, RegisteredModelQuery};

use super::rows::{ModelRow, VersionRow};
use super::{models, versions};
use crate::sql::common::{IN_LIST_CHUNK, placeholders};
use crate::sql::db::{Db, SqlValue};
use crate::sql::search::registry::{search_model_versions, search_registered_models};

fn model_rows(db: &mut dyn Db, pks: &[i64]) -> Result<HashMap<i64, ModelRow>> {
    let mut out = HashMap::with_capacity(pks.len());
    for chunk in pks.chunks(IN_LIST_CHUNK) {
        let params: Vec<SqlValue> = chunk.iter().map(|pk| SqlValue::Int(*pk)).collect();
        let sql = format!(
            "SELECT {} FROM registered_models WHERE model_pk IN ({})",
            ModelRow::COLUMNS,
            placeholders(1, chunk.len())
        );
        for row in db.query(&sql, &params)? {
            let row = ModelRow::from_row(row)?;
            out.insert(row.model_pk, row);
        }
    }
    Ok(out)
}

/// One page of registered models matching `q`, hydrated.
pub fn registered_models(db: &mut dyn Db, q: &RegisteredModelQuery) -> Result<Page<RegisteredModel>> {
    let page = search_registered_models(db, q)?;
    let mut rows = model_rows(db, &page.items)?;
    let ordered: Vec<ModelRow> = page.items.iter().filter_map(|pk| rows.remove(pk)).collect();
    Ok(Page::new(models::hydrate(db, ordered)?, page.next_offset))
}

/// One page of model versions matching `q`, hydrated.
pub fn model_versions(db: &mut dyn Db, q: &ModelVersionQuery) -> Result<Page<ModelVersion>> {
    let page = search_model_versions(db, q)?;
    let mut pks: Vec<i64> = page.items.iter().map(|(pk, _)| *pk).collect();
    pks.sort_unstable();
    pks.dedup();
    let names: HashMap<i64, String> = model_rows(db, &pks)?.into_iter().map(|(pk, row)| (pk, row.name)).collect();
    let mut rows = versions::rows_for(db, &page.items)?;
    let ordered: Vec<VersionRow> = page.items.iter().filter_map(|key| rows.remove(key)).collect();
    Ok(Page::new(versions::hydrate(db, ordered, &names)?, page.next_offset))
}
