// Progressive enhancement for the discharge pages: listens to /discharge/events and, when a referral
// changes, refreshes the marked part of the page (lists) or says that it changed (pages with forms, so
// nothing typed is lost). Without this script, or without EventSource, the pages work as they are.
// When the session ends (signed out, expired, account disabled) a list goes to the sign-in page and a page
// with a form says so, rather than going stale without a word; after a while without use the server pauses the stream, and using the page resumes it.
const region = document.querySelector('[data-live]');
const status = document.getElementById('live-status');
if (region && status && 'EventSource' in window) live(region, status);

function live(region, status) {
  let source;
  let busy = false;
  let stopped = false;

  const say = (text) => {
    status.hidden = false;
    status.textContent = text;
  };

  function stop(text) {
    stopped = true;
    source?.close();
    say(text);
  }

  function signedOut() {
    // A list left on a shared screen would go on showing people to whoever comes next: it goes to sign-in,
    // as the residents and ward lists do. A page with a form keeps what was typed, with the list's names
    // not on it, and says how to go on.
    if (region.dataset.live !== 'notice') {
      source?.close();
      window.location.replace('/sign-in?reason=expired');
      return;
    }
    stop('You have been signed out; sign in again to see changes. ');
    const link = document.createElement('a');
    link.href = '/sign-in';
    link.textContent = 'Sign in';
    status.append(link);
  }

  /** A page answered by a redirect to sign-in (or with no live part) means the session is over. */
  const isSignIn = (res) => res.redirected && new URL(res.url).pathname === '/sign-in';

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(window.location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
      if (isSignIn(res)) return signedOut();
      const fresh = res.ok ? new DOMParser().parseFromString(await res.text(), 'text/html').querySelector('[data-live]') : null;
      if (!fresh) return stop('Live updates have stopped. Reload the page to see the latest.');
      region.innerHTML = fresh.innerHTML;
      say(`Updated at ${new Date().toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })}`);
    } catch {
      say('The page could not be updated. Reload the page to see the latest.');
    } finally {
      busy = false;
    }
  }

  /** The stream was refused (not an event stream: a sign-in page, an error, too many tabs): find out why. */
  async function refused() {
    if (stopped) return;
    try {
      const res = await fetch(window.location.href, { method: 'HEAD', credentials: 'same-origin' });
      if (isSignIn(res)) return signedOut();
    } catch {
      // Offline: said below.
    }
    stop('Live updates have stopped. Reload the page to see the latest.');
  }

  function connect() {
    stopped = false;
    source = new EventSource('/discharge/events');
    source.addEventListener('changed', () => {
      if (region.dataset.live === 'notice') {
        say('This referral has changed since the page was opened. Reload the page to see the latest.');
        return;
      }
      void refresh();
    });
    source.addEventListener('ended', () => signedOut());
    source.addEventListener('idle', () => {
      stop('Live updates are paused because this page has not been used for a while. They start again when you use the page.');
      const resume = () => {
        for (const type of ['keydown', 'pointerdown', 'focus']) removeEventListener(type, resume);
        connect();
        if (region.dataset.live !== 'notice') void refresh();
      };
      for (const type of ['keydown', 'pointerdown', 'focus']) addEventListener(type, resume);
    });
    // A dropped connection is retried by the browser; only a refused one leaves the source closed.
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) void refused();
    });
  }
  connect();
}
