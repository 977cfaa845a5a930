//! Prints the CustomResourceDefinitions of `faas.dev` (for `kubectl apply -f -` or the chart).

fn main() {
    print!("{}", faas_controller::crds());
}
