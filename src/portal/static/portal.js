// The portal's only script (a file, as the Content-Security-Policy allows no inline script). A browser
// that runs modules can run nhsuk-frontend's components; every page works without this.
import { initAll } from './nhsuk-frontend.min.js';

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported');
initAll();
