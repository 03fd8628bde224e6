document.body.textContent = "loading";
