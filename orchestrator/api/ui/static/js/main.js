// The dashboard: login (the key lives in sessionStorage) and three views chosen by the URL's
// hash: journeys (the list, the selected journey #/journey/ID with its dependency map, surveys
// and tasks), feedback per team (#/feedback, #/feedback/TEAM) and deploy a change (#/deploy).
// The shown view is refreshed every few seconds in place.
import { Api } from "./api.js";
import { renderDependencies } from "./dependencies.js";
import { DeployPanel } from "./deploy.js";
import { el, failure, format, message } from "./dom.js";
import { chosenTeam, FeedbackTeamPanel, renderTeams } from "./feedback.js";
import { JourneyGraph } from "./graph.js";
import { renderExperiments, renderFunnel, renderSummary } from "./journey-panels.js";
import { SurveyPanel } from "./surveys.js";
import { renderTasks } from "./tasks.js";

const REFRESH_MS = 5000;
const STORAGE_KEY = "orchestrator.dashboard.key";
const $ = (id) => document.getElementById(id);

const view = {
  graph: new JourneyGraph($("graph")),
  surveys: new SurveyPanel($("surveys")),
  team: new FeedbackTeamPanel($("feedback-team")),
  deploy: new DeployPanel(() => api),
};
let api = null;
let timer = null;
// One refresh at a time: a request for another while one runs (a click, a tab brought to
// the front) runs right after it, so answers are never drawn out of order.
let refreshing = false;
let again = false;
let deployed = new Map(); // journey -> {current, versions, status}

function selected() {
  const match = /^#\/journey\/(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

/** The view the hash names: "journeys", "feedback" or "deploy". */
function currentView() {
  if (/^#\/feedback(\/|$)/.test(location.hash)) return "feedback";
  if (location.hash === "#/deploy") return "deploy";
  return "journeys";
}

function showView(name) {
  for (const other of ["journeys", "feedback", "deploy"]) $(`${other}-view`).hidden = other !== name;
  for (const link of $("views").querySelectorAll("a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showBanner(text) {
  $("banner").textContent = text ?? "";
  $("banner").hidden = !text;
}

function signIn(key) {
  api = new Api(key);
  sessionStorage.setItem(STORAGE_KEY, key);
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("views").hidden = false;
  $("live").hidden = false;
  schedule(0);
}

function signOut(reason) {
  clearTimeout(timer);
  api = null;
  sessionStorage.removeItem(STORAGE_KEY);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("views").hidden = true;
  $("live").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason ?? "";
  $("login-error").hidden = !reason;
  $("key").value = "";
  $("key").focus();
}

function schedule(delay) {
  clearTimeout(timer);
  timer = setTimeout(refresh, delay);
}

/** Calls every path at once; each result is {value} or {error}. */
async function fetchAll(paths) {
  const settled = await Promise.allSettled(paths.map((p) => api.get(p)));
  return settled.map((s) => (s.status === "fulfilled" ? { value: s.value } : { error: s.reason }));
}

async function refresh() {
  if (!api) return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    const shown = currentView();
    showView(shown);
    const results = shown === "feedback" ? await refreshFeedback() : shown === "deploy" ? [] : await refreshJourneys();
    const refused = results.find((r) => r.error && r.error.status === 401);
    if (refused) {
      signOut(`The key was refused: ${refused.error.message}`);
      return;
    }
    const down = results.find((r) => r.error && r.error.status === 0);
    showBanner(down ? down.error.message : null);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString("en-GB")}`;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed ?? 0) + 1);
  } catch (error) {
    showBanner(`The dashboard failed to draw: ${error.message}`);
    throw error;
  } finally {
    refreshing = false;
    if (api) schedule(again ? 0 : document.hidden ? REFRESH_MS * 4 : REFRESH_MS);
    again = false;
  }
}

/** The feedback view: the teams, and the chosen team's queue and themes. */
async function refreshFeedback() {
  const team = chosenTeam(location.hash);
  const [teams, queue] = await fetchAll([
    "/v1/feedback/teams",
    ...(team ? [`/v1/feedback/teams/${encodeURIComponent(team)}?limit=50`] : []),
  ]);
  if (teams.error) $("feedback-teams").replaceChildren(failure(teams.error, "feedback teams"));
  else renderTeams($("feedback-teams"), teams.value, team);
  if (!queue) view.team.show(message("empty", "Choose a team above to see its queue and themes."));
  else if (queue.error) view.team.show(failure(queue.error, `team ${team}`));
  else view.team.render(queue.value);
  return queue ? [teams, queue] : [teams];
}

/** The journeys view; returns every answer (for the refused-key and unreachable checks). */
async function refreshJourneys() {
  const journey = selected();
  const [list, figures, surveys, tasks] = await fetchAll([
    "/v1/journeys",
    "/v1/measure/journeys",
    `/v1/measure/surveys${$("survey-journey").value ? `?journey=${encodeURIComponent($("survey-journey").value)}` : ""}`,
    "/v1/measure/tasks",
  ]);
  if ([list, figures, surveys, tasks].some((r) => r.error && r.error.status === 401)) {
    return [list, figures, surveys, tasks];
  }
  renderJourneyList(list, figures, journey);
  if (journey) await refreshJourney(journey);
  else showJourney(null);
  if (surveys.error) view.surveys.show(failure(surveys.error, "surveys"));
  else view.surveys.render(surveys.value);
  if (tasks.error) $("tasks").replaceChildren(failure(tasks.error, "task cycle times"));
  else renderTasks($("tasks"), tasks.value);
  return [list, figures, surveys, tasks];
}

function renderJourneyList(list, figures, current) {
  const container = $("journey-list");
  if (list.error) {
    container.replaceChildren(el("li", {}, failure(list.error, "journeys")));
    return;
  }
  deployed = new Map(list.value.map((j) => [j.journey, j]));
  const measured = new Map((figures.value?.journeys ?? []).map((j) => [j.journey, j]));
  if (!deployed.size) {
    container.replaceChildren(el("li", {}, message("empty", "No journey is deployed yet.")));
    return;
  }
  container.replaceChildren(...[...deployed.values()].map((j) => {
    const m = measured.get(j.journey);
    return el("li", { class: j.journey === current ? "current" : null },
      el("a", { href: `#/journey/${encodeURIComponent(j.journey)}`, "data-journey": j.journey },
        el("span", { class: "name" }, j.journey),
        el("span", { class: `status status-${j.status}` }, j.status),
        el("span", { class: "numbers" }, m ? `${format.int(m.entered)} entered · ${format.pct(m.conversion_rate)} converted` : "no figures")));
  }));
  if (figures.error) container.append(el("li", {}, failure(figures.error, "journey figures")));
  const surveyChoice = $("survey-journey");
  const chosen = surveyChoice.value;
  surveyChoice.replaceChildren(el("option", { value: "" }, "all journeys"),
    ...[...deployed.keys()].map((name) => el("option", { value: name, selected: name === chosen }, name)));
}

function showJourney(journey, problem = null) {
  $("journey-empty").textContent = problem ?? "Choose a journey on the left.";
  $("journey-empty").classList.toggle("error", Boolean(problem));
  $("journey-empty").hidden = Boolean(journey) && !problem;
  $("journey-body").hidden = !journey || Boolean(problem);
}

function chosenVersion(journey) {
  const record = deployed.get(journey);
  const select = $("version");
  const previous = select.dataset.journey === journey ? select.value : "";
  const versions = record ? Array.from({ length: record.versions }, (_, i) => i + 1) : [];
  select.dataset.journey = journey;
  select.replaceChildren(...versions.reverse().map((v) =>
    el("option", { value: v, selected: String(v) === previous }, v === record.current ? `${v} (current)` : String(v))));
  if (!previous && record) select.value = String(record.current);
  return select.value;
}

async function refreshJourney(journey) {
  if (!deployed.has(journey)) {
    showJourney(journey, `Journey ${journey} is not deployed: choose one on the left.`);
    return;
  }
  showJourney(journey);
  $("journey-title").textContent = journey;
  const version = chosenVersion(journey);
  const base = `/v1/measure/journeys/${encodeURIComponent(journey)}`;
  const [graph, figures, funnel, experiments, dependencies] = await fetchAll([
    `/v1/journeys/${encodeURIComponent(journey)}/graph?version=${version}`,
    `${base}?version=${version}`,
    `${base}/funnel?version=${version}`,
    `${base}/experiments?version=${version}`,
    `/v1/journeys/${encodeURIComponent(journey)}/dependencies`,
  ]);
  if (graph.error) {
    view.graph.key = null;
    $("graph").replaceChildren(failure(graph.error, "step graph"));
  } else {
    view.graph.draw(graph.value);
  }
  if (figures.error) {
    $("summary").replaceChildren(failure(figures.error, "journey figures"));
    $("graph-note").textContent = "";
  } else {
    renderSummary($("summary"), figures.value);
    const stray = graph.error ? [] : view.graph.update(figures.value);
    $("graph-note").textContent = stray.length
      ? `Not drawn (steps of another version): ${stray.join(", ")}`
      : "Node: customers who entered the step · waiting there now. Edge: customers who went that way.";
  }
  // The map is of the current version: its badges go on the graph only when that is drawn.
  const current = String(deployed.get(journey)?.current) === version;
  if (!graph.error) view.graph.markRisks(current && !dependencies.error ? dependencies.value : null);
  if (dependencies.error) $("dependencies").replaceChildren(failure(dependencies.error, "dependency map"));
  else renderDependencies($("dependencies"), dependencies.value);
  if (funnel.error) $("funnel").replaceChildren(failure(funnel.error, "funnel"));
  else renderFunnel($("funnel"), funnel.value);
  if (experiments.error) $("experiments").replaceChildren(failure(experiments.error, "experiments"));
  else renderExperiments($("experiments"), experiments.value);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (key) signIn(key);
});
$("logout").addEventListener("click", () => signOut(null));
$("version").addEventListener("change", () => schedule(0));
$("survey-journey").addEventListener("change", () => schedule(0));
window.addEventListener("hashchange", () => schedule(0));
// A tab brought back to the front refreshes at once rather than at its slower hidden pace.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && api) schedule(0);
});

const saved = sessionStorage.getItem(STORAGE_KEY);
if (saved) signIn(saved);
else signOut(null);
