// A padlock drawn as a path, because the emoji draws as an empty box on machines without an
// emoji font (many Linux desktops and every headless browser).

/** The padlock's shape in a 16×16 box: a shackle over a body. */
export const LOCK_PATH = "M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z";

/** The padlock inline with text, sized to the text. */
export function LockIcon() {
  return (
    <svg class="lock-icon" width="0.9em" height="0.9em" viewBox="0 0 16 16" aria-hidden="true">
      <path d={LOCK_PATH} fill="currentColor" fill-rule="evenodd" />
    </svg>
  );
}
