//! The hello function: `200 Hello from faas: <METHOD> <path>[?query]`.

use faas_sdk::{Request, Response};

/// Answers with the method and the request target (path and query) it was called with.
pub fn handle(req: Request) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path(), |pq| pq.as_str());
    Response::new(format!("Hello from faas: {} {target}\n", req.method()).into())
}

faas_sdk::export_handler!(handle);

#[cfg(test)]
mod tests {
    use super::handle;
    use faas_sdk::testing;

    #[test]
    fn greets_with_method_path_and_query() {
        let resp = testing::call(
            handle,
            testing::request("GET", "/function/hello/abc?x=1", ""),
        );
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.body().as_ref(),
            b"Hello from faas: GET /function/hello/abc?x=1\n"
        );
    }

    #[test]
    fn greets_without_query() {
        let resp = testing::call(handle, testing::request("POST", "/hello", "ignored"));
        assert_eq!(resp.body().as_ref(), b"Hello from faas: POST /hello\n");
    }
}
