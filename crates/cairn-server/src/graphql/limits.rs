//! MLflow's guard against batching many reads into one GraphQL request
//! (`graphql_no_batching.py`): at most 10 root fields, at most 10 aliases at any one level
//! (counting those spread in from fragments), a depth of 10 and 1,000 selections in all. A
//! query over a limit is not executed; its only error says which limit.

use std::collections::HashSet;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};

/// Most fields at the root of a query.
pub const MAX_ROOT_FIELDS: usize = 10;
/// Most aliases at one level of a query.
pub const MAX_ALIASES: usize = 10;
/// Deepest nesting of selections.
pub const MAX_DEPTH: usize = 10;
/// Most field selections in a query.
pub const MAX_SELECTIONS: usize = 1000;

/// The fields directly selected by `set` (through inline fragments and fragment spreads, each
/// fragment once), and how many of them have aliases.
fn level<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    visited: &mut HashSet<&'a str>,
) -> (Vec<&'a SelectionSet>, usize, usize) {
    let (mut children, mut fields, mut aliases) = (Vec::new(), 0, 0);
    let mut pending: Vec<&SelectionSet> = vec![set];
    while let Some(current) = pending.pop() {
        for item in &current.items {
            match &item.node {
                Selection::Field(field) => {
                    fields += 1;
                    aliases += usize::from(field.node.alias.is_some());
                    if !field.node.selection_set.node.items.is_empty() {
                        children.push(&field.node.selection_set.node);
                    }
                }
                Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if visited.insert(name)
                        && let Some(definition) = doc.fragments.get(name)
                    {
                        pending.push(&definition.node.selection_set.node);
                    }
                }
            }
        }
    }
    (children, fields, aliases)
}

/// The message of the first limit `doc` exceeds, or `None`.
pub fn check(doc: &ExecutableDocument) -> Option<String> {
    let operations: Vec<&SelectionSet> = match &doc.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node.selection_set.node).collect(),
    };
    let (mut root_fields, mut max_aliases, mut selections) = (0, 0, 0);
    for root in operations {
        let mut stack = vec![(root, 1usize)];
        while let Some((set, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Some(format!("Query exceeds maximum depth of {MAX_DEPTH}"));
            }
            let (children, fields, aliases) = level(doc, set, &mut HashSet::new());
            if depth == 1 {
                root_fields += fields;
            }
            selections += fields;
            if selections > MAX_SELECTIONS {
                return Some(format!("Query exceeds maximum total selections of {MAX_SELECTIONS}"));
            }
            max_aliases = max_aliases.max(aliases);
            stack.extend(children.into_iter().map(|child| (child, depth + 1)));
        }
    }
    let over = |what: &str, limit: usize, got: usize| {
        format!("GraphQL queries should have at most {limit} {what}, got {got} {what}.")
    };
    if root_fields > MAX_ROOT_FIELDS {
        Some(over("root fields", MAX_ROOT_FIELDS, root_fields))
    } else if max_aliases > MAX_ALIASES {
        Some(over("aliases", MAX_ALIASES, max_aliases))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn check_text(query: &str) -> Option<String> {
        check(&parse_query(query).expect("query parses"))
    }

    #[test]
    fn limits_follow_mlflows() {
        assert_eq!(check_text("{ a b { c } }"), None);
        let roots: String = (0..11).map(|i| format!("f{i} ")).collect();
        assert_eq!(
            check_text(&format!("{{ {roots} }}")).as_deref(),
            Some("GraphQL queries should have at most 10 root fields, got 11 root fields.")
        );
        let aliases: String = (0..11).map(|i| format!("a{i}: f ")).collect();
        let nested = format!("{{ x {{ {aliases} }} }}");
        assert_eq!(
            check_text(&nested).as_deref(),
            Some("GraphQL queries should have at most 10 aliases, got 11 aliases.")
        );
        let spread = "query { x { ...A ...B } } fragment A on T { a1: f a2: f a3: f a4: f a5: f a6: f } \
                      fragment B on T { b1: f b2: f b3: f b4: f b5: f b6: f }";
        assert!(check_text(spread).unwrap().contains("aliases"), "aliases spread over fragments add up");
        let deep = (0..11).fold(String::from("z"), |inner, i| format!("f{i} {{ {inner} }}"));
        assert_eq!(check_text(&format!("{{ {deep} }}")).as_deref(), Some("Query exceeds maximum depth of 10"));
        let cyclic = "query { x { ...A } } fragment A on T { a { ...A } }";
        assert_eq!(
            check_text(cyclic).as_deref(),
            Some("Query exceeds maximum depth of 10"),
            "a cycle ends at the depth limit"
        );
    }
}
