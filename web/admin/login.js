// Admin sign-in: keep the key in a session cookie (sent with the page's requests) and reload.
const form = document.getElementById('f');
form.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = document.getElementById('k').value;
  document.cookie = `herald_key=${encodeURIComponent(key)};path=/;SameSite=Strict`;
  location.reload();
});
document.getElementById('k').focus();
