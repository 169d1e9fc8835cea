//! The category tree citizens pick from.

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Category;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_categories);
}

#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct CategoryNode {
    /// Two-level code: 大类 (2 digits) / 小类 (4 digits).
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

/// Active categories as a tree, in display order. Reports use the codes of leaves.
#[utoipa::path(tag = "categories", responses((status = 200, body = Vec<CategoryNode>)))]
#[get("/api/v1/categories")]
async fn list_categories(
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<CategoryNode>>, ApiError> {
    Ok(web::Json(tree(state.repo.categories().await?)))
}

/// Builds the tree from rows sorted in display order; inactive branches are left out.
fn tree(categories: Vec<Category>) -> Vec<CategoryNode> {
    fn children_of(parent: Option<&str>, all: &[Category]) -> Vec<CategoryNode> {
        all.iter()
            .filter(|c| c.active && c.parent_code.as_deref() == parent)
            .map(|c| CategoryNode {
                code: c.code.clone(),
                name_zh: c.name_zh.clone(),
                name_en: c.name_en.clone(),
                children: children_of(Some(&c.code), all),
            })
            .collect()
    }
    children_of(None, &categories)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(code: &str, parent: Option<&str>, active: bool) -> Category {
        Category {
            code: code.into(),
            parent_code: parent.map(Into::into),
            name_zh: format!("zh{code}"),
            name_en: format!("en{code}"),
            sort_order: 0,
            active,
        }
    }

    #[test]
    fn builds_two_levels_and_drops_inactive() {
        let nodes = tree(vec![
            cat("01", None, true),
            cat("0101", Some("01"), true),
            cat("0102", Some("01"), false),
            cat("02", None, false),
            cat("0201", Some("02"), true),
        ]);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].code, "01");
        assert_eq!(
            nodes[0]
                .children
                .iter()
                .map(|c| c.code.as_str())
                .collect::<Vec<_>>(),
            ["0101"]
        );
    }
}
