// The portal's only script (a file, as the Content-Security-Policy allows no inline script). A browser
// that runs modules can run nhsuk-frontend's components; every page works without this.
import { initAll } from './nhsuk-frontend.min.js';

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported');
initAll();

// Live lists (residents, ward list): the server says "changed" when something about someone on the page
// is written; the page then fetches itself again and swaps in the new list. Nothing personal comes over
// the stream. After a while without use the server stops the stream; using the page starts it again.
// When the session ends (signed out, perhaps in another tab; expired; account disabled or password reset)
// the server says "ended" and closes the stream, and a new one is refused: the browser then goes to the
// sign-in page, so a shared screen does not keep showing the list to whoever comes next.
const region = document.getElementById('live-region');
if (region && region.dataset.live && 'EventSource' in window) live(region, document.getElementById('live-status'));

function live(region, status) {
  const say = (text) => { if (status) status.textContent = text; };
  let source;
  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const res = await fetch(location.href, { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (res.redirected && new URL(res.url).pathname === '/sign-in') return toSignIn();
      const next = res.ok && !res.redirected ? new DOMParser().parseFromString(await res.text(), 'text/html').getElementById('live-region') : null;
      if (!next) { stop('Live updates have stopped. Reload the page to see the latest.'); return; }
      region.replaceChildren(...next.childNodes);
      say(`List updated at ${new Date().toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })}.`);
    } catch {
      say('The list could not be updated. Reload the page to see the latest.');
    } finally {
      busy = false;
      if (again) { again = false; void refresh(); }
    }
  }

  function stop(text) {
    source?.close();
    say(text);
  }

  function toSignIn() {
    source?.close();
    location.replace('/sign-in?reason=expired');
  }

  /** The stream was refused (answered with a page, not events): signed out goes to sign-in, anything else is said. */
  async function refused() {
    try {
      const res = await fetch(location.href, { method: 'HEAD', credentials: 'same-origin' });
      if (res.redirected && new URL(res.url).pathname === '/sign-in') return toSignIn();
    } catch {
      // Offline: said below.
    }
    stop('Live updates have stopped. Reload the page to see the latest.');
  }

  function connect() {
    source = new EventSource(`/live/${encodeURIComponent(region.dataset.live)}`);
    source.addEventListener('changed', () => void refresh());
    source.addEventListener('ended', toSignIn);
    // A dropped connection is retried by the browser; only a refused one leaves the source closed.
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) void refused();
    });
    source.addEventListener('idle', () => {
      stop('Live updates are paused because this page has not been used for a while. They start again when you use the page.');
      const resume = () => {
        for (const type of ['keydown', 'pointerdown', 'focus']) removeEventListener(type, resume);
        connect();
        void refresh();
      };
      for (const type of ['keydown', 'pointerdown', 'focus']) addEventListener(type, resume);
    });
  }
  connect();
}
