//! A complete agent loop over Sandpit's function-calling tools, with a scripted stand-in for
//! the model (no network, no API key): the tools go to the "model" in OpenAI's format, its
//! replies carry OpenAI-style `tool_calls` (arguments as a JSON string), each call is
//! dispatched with `sandpit::tools::call`, and the results go back as `role: "tool"`
//! messages until the model answers in plain text.
//!
//! Swap `ScriptedModel::complete` for a request to a real chat completions API and nothing
//! else changes.
//!
//! ```sh
//! cargo run -p sandpit --example agent_loop
//! ```

use sandpit::tools::{self, Format, LocalTools};
use serde_json::{json, Value};

/// Plays the model: one scripted step per turn, reading the tool results it needs from the
/// conversation, as a model would.
struct ScriptedModel {
    turn: usize,
}

impl ScriptedModel {
    /// The next assistant message, in the shape of OpenAI's `choices[0].message`.
    fn complete(&mut self, messages: &[Value], tools: &Value) -> Result<Value, String> {
        let offered: Vec<&str> = tools
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str())
            .collect();
        self.turn += 1;
        let call = |name: &str, arguments: Value| -> Result<Value, String> {
            if !offered.contains(&name) {
                return Err(format!("the model was not offered a tool named {name}"));
            }
            Ok(json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": format!("call_{}", name),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments.to_string()},
                }],
            }))
        };
        match self.turn {
            1 => call(
                "create_session",
                json!({"language": "python", "lifetime": 600}),
            ),
            2 => {
                let session = session_id(messages)?;
                call(
                    "execute",
                    json!({"session_id": session, "code":
                        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\nfibs = [fib(i) for i in range(21)]\nfibs[20]"}),
                )
            }
            3 => {
                let session = session_id(messages)?;
                call(
                    "execute",
                    json!({"session_id": session, "code":
                        "import matplotlib.pyplot as plt\nplt.plot(fibs, marker='o')\nplt.title('Fibonacci')\nprint(len(fibs), 'points')"}),
                )
            }
            4 => {
                let session = session_id(messages)?;
                call("close_session", json!({"session_id": session}))
            }
            _ => {
                let answer = messages
                    .iter()
                    .filter(|m| m["role"] == "tool")
                    .filter_map(|m| m["content"].as_str())
                    .find_map(|t| {
                        t.lines()
                            .skip_while(|l| *l != "result:")
                            .nth(1)
                            .map(str::to_string)
                    })
                    .ok_or("no result came back from the sandbox")?;
                let figure = messages
                    .iter()
                    .filter_map(|m| m["content"].as_str())
                    .any(|t| t.contains("[image figure-1.png"));
                Ok(json!({
                    "role": "assistant",
                    "content": format!(
                        "The 20th Fibonacci number is {answer}.{}",
                        if figure { " The plot came back as a figure." } else { "" }
                    ),
                }))
            }
        }
    }
}

/// The session id create_session returned, from the tool messages.
fn session_id(messages: &[Value]) -> Result<String, String> {
    messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str())
        .find_map(|t| t.lines().find_map(|l| l.strip_prefix("session_id: ")))
        .map(str::to_string)
        .ok_or_else(|| "create_session returned no session_id".to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tool_definitions = tools::render(Format::OpenAi);
    let mut toolbox = LocalTools::new();
    if let Ok(ca) = std::env::var("SANDPIT_CA_BUNDLE") {
        toolbox = toolbox.configure(move |b| b.extra_ca_certificates(ca.clone()));
    }
    let mut model = ScriptedModel { turn: 0 };
    let mut messages = vec![
        json!({"role": "system", "content": "You answer with the help of a code sandbox."}),
        json!({"role": "user", "content": "What is the 20th Fibonacci number? Plot the first 21."}),
    ];

    let outcome: Result<String, String> = async {
        for _ in 0..10 {
            let reply = model.complete(&messages, &tool_definitions)?;
            messages.push(reply.clone());
            let Some(calls) = reply["tool_calls"].as_array() else {
                return Ok(reply["content"].as_str().unwrap_or_default().to_string());
            };
            for call in calls {
                let name = call["function"]["name"].as_str().unwrap_or_default();
                let arguments = call["function"]["arguments"].clone();
                println!("-> {name} {}", arguments.as_str().unwrap_or_default());
                let output = tools::call(&toolbox, name, arguments).await;
                let content = output.to_text();
                println!("<- {}", content.trim_end().replace('\n', "\n   "));
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "content": content,
                }));
            }
        }
        Err("the model did not answer within 10 turns".to_string())
    }
    .await;

    toolbox.close_all().await;
    let answer = outcome?;
    println!("{answer}");
    Ok(())
}
