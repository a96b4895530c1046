// isoms-otp demo: the recovery codes' copy button (the page works without it).
"use strict";
document.querySelectorAll("[data-copy]").forEach((button) => {
  button.addEventListener("click", () => {
    const list = document.getElementById(button.dataset.copy);
    const text = Array.from(list.querySelectorAll("code"), (code) => code.textContent).join("\n");
    const status = document.getElementById("copy-status");
    navigator.clipboard.writeText(text + "\n").then(
      () => { status.textContent = "Copied."; },
      () => { status.textContent = "Copying failed: select the codes and copy them."; },
    );
  });
});
