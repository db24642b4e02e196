// Progressive enhancement for the discharge pages: listens to /discharge/events and, when a referral
// changes, refreshes the marked part of the page (lists) or says that it changed (pages with forms, so
// nothing typed is lost). Without this script, or without EventSource, the pages work as they are.
const region = document.querySelector('[data-live]');
const status = document.getElementById('live-status');
if (region && status && 'EventSource' in window) {
  const source = new EventSource('/discharge/events');
  let busy = false;
  source.addEventListener('changed', async () => {
    if (region.dataset.live === 'notice') {
      status.hidden = false;
      status.textContent = 'This referral has changed since the page was opened. Reload the page to see the latest.';
      return;
    }
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(window.location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
      if (!res.ok) return;
      const fresh = new DOMParser().parseFromString(await res.text(), 'text/html').querySelector('[data-live]');
      if (fresh) {
        region.innerHTML = fresh.innerHTML;
        status.hidden = false;
        status.textContent = `Updated at ${new Date().toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })}`;
      }
    } finally {
      busy = false;
    }
  });
}
