// Admin sign-in: the form posts the key to /admin/login, which sets an HttpOnly session cookie
// (no script here ever sees the key again). This only puts the cursor in the field.
document.getElementById('k').focus();
