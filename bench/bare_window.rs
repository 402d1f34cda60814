//! A bare Tauri window over a tiny static page (`ui/public/bare.html`), built from the same
//! crates and config as the console: the baseline `bench/startup.py` measures Gatehouse against.

#[tauri::command]
fn first_paint() {
    println!("first-paint");
}

fn main() {
    let mut context = tauri::generate_context!();
    for window in &mut context.config_mut().app.windows {
        window.url = tauri::WebviewUrl::App("bare.html".into());
    }
    if let Err(error) = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![first_paint])
        .run(context)
    {
        eprintln!("bare window failed: {error}");
        std::process::exit(1);
    }
}
