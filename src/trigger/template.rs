//! The action templates (minijinja, Jinja2 syntax).
//!
//! Context of every template: `alert` (the Alertmanager alert: `status`, `labels`,
//! `annotations`, `startsAt`, `endsAt`, `generatorURL`, `fingerprint`), shortcuts `labels`,
//! `annotations`, `status`, and `receiver`, `externalURL`, `groupKey`, `action` (the
//! action's name). Undefined values are errors (use `|default("")`), so a typo in a label
//! name shows in the record instead of sending an empty field.
//!
//! The HTTP body is rendered with JSON auto-escaping: `{{ labels.model }}` writes `"fraud"`,
//! quotes included, so no label value can change the document's structure; the result must
//! parse as JSON. URLs and command arguments are written as they are (use `|urlencode` in
//! URLs; commands run without a shell, so an argument stays one argument).

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

use super::config::ActionConfig;

/// The default body when an action gives none: the action's name and the alert.
pub const DEFAULT_BODY: &str = r#"{"action": {{ action }}, "receiver": {{ receiver }}, "externalURL": {{ externalURL }}, "alert": {{ alert }}}"#;

fn environment(json: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    if json {
        env.set_auto_escape_callback(|_| AutoEscape::Json);
    } else {
        env.set_auto_escape_callback(|_| AutoEscape::None);
    }
    env
}

/// The templates of one action, checked to compile.
#[derive(Debug)]
pub struct Templates {
    url: Option<String>,
    body: Option<String>,
    command: Vec<String>,
}

/// What an action will do once rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// An HTTP call.
    Http {
        /// Method.
        method: String,
        /// URL.
        url: String,
        /// JSON body (serialized).
        body: String,
    },
    /// A command.
    Command(Vec<String>),
}

impl Templates {
    /// Compiles every template of `action`; `Err((key, message))` names the failing one.
    pub fn compile(action: &ActionConfig) -> Result<Self, (String, String)> {
        let plain = environment(false);
        let json = environment(true);
        let check = |env: &Environment<'static>, key: &str, src: &str| {
            env.template_from_str(src)
                .map(|_| ())
                .map_err(|e| (key.to_string(), e.to_string()))
        };
        let mut out = Templates {
            url: None,
            body: None,
            command: Vec::new(),
        };
        if let Some(http) = &action.http {
            check(&plain, "http.url", &http.url)?;
            let body = http
                .body
                .clone()
                .unwrap_or_else(|| DEFAULT_BODY.to_string());
            check(&json, "http.body", &body)?;
            out.url = Some(http.url.clone());
            out.body = Some(body);
        }
        if let Some(command) = &action.command {
            for (i, arg) in command.iter().enumerate() {
                check(&plain, &format!("command[{i}]"), arg)?;
            }
            out.command = command.clone();
        }
        Ok(out)
    }

    /// Renders the action for one alert. `ctx` is the template context (see the module).
    pub fn render(&self, action: &ActionConfig, ctx: &Value) -> Result<Rendered, String> {
        if let (Some(url), Some(body), Some(http)) = (&self.url, &self.body, &action.http) {
            let url = environment(false)
                .render_str(url, ctx)
                .map_err(|e| format!("url template: {e:#}"))?;
            reqwest::Url::parse(&url).map_err(|e| format!("url {url:?}: {e}"))?;
            let body = environment(true)
                .render_str(body, ctx)
                .map_err(|e| format!("body template: {e:#}"))?;
            serde_json::from_str::<Value>(&body)
                .map_err(|e| format!("the rendered body is not JSON ({e}): {body}"))?;
            return Ok(Rendered::Http {
                method: http.method.to_ascii_uppercase(),
                url,
                body,
            });
        }
        let plain = environment(false);
        let args = self
            .command
            .iter()
            .enumerate()
            .map(|(i, a)| {
                plain
                    .render_str(a, ctx)
                    .map_err(|e| format!("command[{i}] template: {e:#}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rendered::Command(args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::config::HttpAction;
    use serde_json::json;

    fn action(body: Option<&str>) -> ActionConfig {
        ActionConfig {
            name: "retrain".into(),
            matchers: Default::default(),
            dedup_by: vec![],
            cooldown: None,
            on_resolved: false,
            timeout: std::time::Duration::from_secs(1),
            http: Some(HttpAction {
                url: "https://ci.example.com/repos/o/r/dispatches?m={{ labels.model|urlencode }}"
                    .into(),
                method: "post".into(),
                headers: Default::default(),
                body: body.map(str::to_string),
                hmac_secret_env: None,
            }),
            command: None,
        }
    }

    fn ctx(model: &str) -> Value {
        json!({"labels": {"model": model, "alertname": "MlmonFeatureDrift"}, "action": "retrain",
               "receiver": "r", "externalURL": "http://am", "alert": {"labels": {"model": model}}})
    }

    #[test]
    fn label_values_cannot_break_out_of_the_json_body() {
        let a = action(Some(
            r#"{"event_type": "retrain", "client_payload": {"model": {{ labels.model }}}}"#,
        ));
        let t = Templates::compile(&a).unwrap();
        let hostile = r#"x", "admin": true, "y": "\"#;
        let Rendered::Http { body, url, method } = t.render(&a, &ctx(hostile)).unwrap() else {
            panic!()
        };
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["client_payload"]["model"], hostile);
        assert!(doc.get("admin").is_none());
        assert_eq!(method, "POST");
        assert!(url.ends_with("?m=x%22%2C%20%22admin%22%3A%20true%2C%20%22y%22%3A%20%22%5C"));
    }

    #[test]
    fn the_default_body_carries_the_alert_and_undefined_names_fail() {
        let a = action(None);
        let t = Templates::compile(&a).unwrap();
        let Rendered::Http { body, .. } = t.render(&a, &ctx("fraud")).unwrap() else {
            panic!()
        };
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["alert"]["labels"]["model"], "fraud");
        assert_eq!(doc["action"], "retrain");

        let typo = action(Some(r#"{"m": {{ labels.modle }}}"#));
        let err = Templates::compile(&typo)
            .unwrap()
            .render(&typo, &ctx("fraud"))
            .unwrap_err();
        assert!(err.contains("body template"), "{err}");
    }
}
