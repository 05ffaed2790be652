// Retorno dashboard: filters submit on change; the table sorts by any column (click its header), filters by
// text and shows PAGE rows at a time.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const filters = document.getElementById("filters");
  if (filters) {
    const survey = document.getElementById("f-survey");
    const dimension = document.getElementById("f-dimension");
    const indicator = document.getElementById("f-indicator");
    survey.addEventListener("change", () => {
      dimension.value = "";
      indicator.value = "";
      filters.submit();
    });
    dimension.addEventListener("change", () => {
      const chosen = indicator.selectedOptions[0];
      if (chosen && chosen.dataset.dimension && chosen.dataset.dimension !== dimension.value) indicator.value = "";
      filters.submit();
    });
    for (const id of ["f-indicator", "f-group", "f-metric"]) {
      document.getElementById(id).addEventListener("change", () => filters.submit());
    }
  }

  const table = document.getElementById("cells");
  if (!table) return;
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((header, column) => {
    header.tabIndex = 0;
    header.setAttribute("aria-sort", "none");
    const sort = () => {
      const ascending = header.getAttribute("aria-sort") !== "ascending";
      headers.forEach((h) => h.setAttribute("aria-sort", "none"));
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const numeric = header.dataset.sort === "number";
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      const key = (row) => {
        const cell = cellAt(row, column);
        if (!cell) return null;
        const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
        if (raw === "") return null;
        return numeric ? Number(raw) : raw;
      };
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === null && y === null) return 0;
        if (x === null) return 1;  // suppressed and empty cells last, either way
        if (y === null) return -1;
        const order = numeric ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
        return ascending ? order : -order;
      });
      rows.forEach((row) => body.appendChild(row));
      page = 0;
      showPage();
    };
    header.addEventListener("click", sort);
    header.addEventListener("keydown", (event) => { if (event.key === "Enter") sort(); });
  });

  // paging and filtering: PAGE rows at a time, of those whose text holds every word typed
  const PAGE = 50;
  let page = 0;
  const filter = document.getElementById("cells-filter");
  const previous = document.getElementById("cells-previous");
  const next = document.getElementById("cells-next");
  const showing = document.getElementById("cells-showing");
  const pager = document.getElementById("cells-pager");
  const fold = (text) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  function matching() {
    const words = filter ? fold(filter.value).split(/\s+/).filter(Boolean) : [];
    return Array.from(table.tBodies[0].rows).filter((row) => {
      const text = fold(row.textContent + " " + Array.from(row.cells).map((c) => c.title).join(" "));
      return words.every((word) => text.includes(word));
    });
  }
  function showPage() {
    const rows = Array.from(table.tBodies[0].rows);
    const shown = matching();
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    const first = page * PAGE;
    const visible = new Set(shown.slice(first, first + PAGE));
    rows.forEach((row) => { row.hidden = !visible.has(row); });
    if (showing && pager) {
      showing.textContent = pager.dataset.showing
        .replace("{first}", shown.length ? first + 1 : 0)
        .replace("{last}", Math.min(first + PAGE, shown.length))
        .replace("{total}", shown.length);
    }
    if (previous) previous.disabled = page === 0;
    if (next) next.disabled = page >= pages - 1;
  }
  if (filter) filter.addEventListener("input", () => { page = 0; showPage(); });
  if (previous) previous.addEventListener("click", () => { page -= 1; showPage(); });
  if (next) next.addEventListener("click", () => { page += 1; showPage(); });
  showPage();

  // a suppressed row spans several columns: find the cell under a header's column
  function cellAt(row, column) {
    let position = 0;
    for (const cell of row.cells) {
      const span = cell.colSpan || 1;
      if (column < position + span) return span > 1 && column !== position ? null : cell;
      position += span;
    }
    return null;
  }
});
