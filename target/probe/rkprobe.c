// SPDX-License-Identifier: GPL-2.0
/*
 * rkprobe: replays the Rockchip IOMMU driver's page-table sequence on a real kernel.
 *
 * drivers/iommu/rockchip-iommu.c allocates its directory table (DT) and page tables (PT) with
 * the page allocator, maps each with dma_map_single(DMA_TO_DEVICE) on the IOMMU's own struct
 * device (dma-direct, possibly SWIOTLB), writes entries through a CPU pointer and flushes them
 * with dma_sync_single_for_device. The CPU pointer of a PT is derived from the address stored
 * in the DTE: phys_to_virt(rkp_pt_address(dte)). When a PT was bounced by SWIOTLB that is the
 * bounce slot, and each flush copies the (zero) original over the PTEs just written.
 *
 * This module does the same, with the same allocator calls, gfp flags, DMA API calls and entry
 * encodings (v1 "rockchip,iommu", v2 "rockchip,rk3568-iommu"), on a dummy platform device whose
 * DMA mask is a parameter, then walks every IOVA as a hardware walker with a given address reach
 * would: it reads the DT at its DMA address, the PT at the address the DTE holds, and the PTE,
 * from physical memory (on this platform a DMA address is a physical address). It reports, in
 * the line format documented in README.md, where every table landed, whether it was bounced,
 * and per IOVA the translated page or the fault the hardware would raise.
 *
 * It never writes through a pointer the driver would derive but that is neither the table's
 * page nor its bounce slot (a truncated v1 address): the driver would corrupt memory there; the
 * probe reports `unsafe=1` and skips the write. At unload it unmaps what it mapped; where the
 * driver would free a SWIOTLB slot's page (a bounced PT) the probe does not, and it leaks the
 * original page as the driver does (reported with a `leak` line).
 */

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/slab.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/dma-mapping.h>
#include <linux/dma-map-ops.h>
#include <linux/platform_device.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/utsname.h>
#include <linux/version.h>
#include <linux/string.h>

#define RKPROBE_FORMAT_VERSION 1
#define SPAGE_SIZE 4096
#define NUM_DT_ENTRIES 1024
#define NUM_PT_ENTRIES 1024
#define MAX_IOVAS 64
#define MAX_PAGES_PER_IOVA 16
#define REPORT_SIZE (64 * 1024)

#define RK_DTE_PT_ADDRESS_MASK 0xfffff000
#define RK_DTE_PT_VALID BIT(0)
#define RK_PTE_PAGE_ADDRESS_MASK 0xfffff000
#define RK_PTE_PAGE_READABLE BIT(1)
#define RK_PTE_PAGE_WRITABLE BIT(2)
#define RK_PTE_PAGE_VALID BIT(0)
#define RK_IOVA_DTE_MASK 0xffc00000
#define RK_IOVA_DTE_SHIFT 22
#define RK_IOVA_PTE_MASK 0x003ff000
#define RK_IOVA_PTE_SHIFT 12
#define DTE_ADDR_DUMMY 0xCAFEBABE

static char *gfp = "none";
module_param(gfp, charp, 0444);
MODULE_PARM_DESC(gfp, "zone flag of table allocations: none (v2 ops >= 6.6), dma32, dma");
static uint mask_bits = 32;
module_param(mask_bits, uint, 0444);
MODULE_PARM_DESC(mask_bits, "DMA mask of the IOMMU device in bits (32 or 40 in the driver)");
static char *format = "v2";
module_param(format, charp, 0444);
MODULE_PARM_DESC(format, "entry format: v1 (rockchip,iommu) or v2 (rockchip,rk3568-iommu)");
static uint dt_reach = 32;
module_param(dt_reach, uint, 0444);
MODULE_PARM_DESC(dt_reach, "address bits the walker can read the directory table at");
static uint pt_reach = 32;
module_param(pt_reach, uint, 0444);
MODULE_PARM_DESC(pt_reach, "address bits the walker can read page tables at");
static char *iovas = "0x10000000:high,0x10001000:low";
module_param(iovas, charp, 0444);
MODULE_PARM_DESC(iovas, "IOVA mappings: iova:low|high[:pages],... (pages 1-16, one DTE)");
static uint perm = 3;
module_param(perm, uint, 0444);
MODULE_PARM_DESC(perm, "prot of the mappings: 1 IOMMU_READ, 2 IOMMU_WRITE, 3 both");
static char *encode = "";
module_param(encode, charp, 0444);
MODULE_PARM_DESC(encode, "addresses to print v1/v2 encodings of (encoding self-test): a,b,...");
static bool leak = true;
module_param(leak, bool, 0444);
MODULE_PARM_DESC(leak, "at unload, leak the original of a bounced PT as the driver does");

struct probe_iova {
	u32 iova;
	bool high;
	unsigned int pages;
	struct page *backing[MAX_PAGES_PER_IOVA];
};

struct probe_pt {
	void *cpu;		/* the page the probe allocated */
	dma_addr_t dma;		/* what dma_map_single returned */
	bool mapped;
};

static struct platform_device *pdev;
static struct device *dev;
static bool v2;
static gfp_t zone_flags;
static u32 *dt;
static dma_addr_t dt_dma;
static bool dt_mapped;
static struct probe_pt pts[NUM_DT_ENTRIES];
static struct probe_iova maps[MAX_IOVAS];
static unsigned int nmaps;
static char *report;
static size_t report_len;
static unsigned int report_lines;
static struct proc_dir_entry *proc;

static __printf(1, 2) void out(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vscnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pr_info("rkprobe: %s\n", line);
	report_lines++;
	if (report && report_len + n + 11 < REPORT_SIZE)
		report_len += scnprintf(report + report_len, REPORT_SIZE - report_len,
					"rkprobe: %s\n", line);
}

/* --- Entry encodings (drivers/iommu/rockchip-iommu.c; oracle/entries.ts) --- */

static u32 rk_mk_dte(dma_addr_t pt_dma)
{
	return (pt_dma & RK_DTE_PT_ADDRESS_MASK) | RK_DTE_PT_VALID;
}

static u32 rk_mk_dte_v2(dma_addr_t pt_dma)
{
	pt_dma = (pt_dma & RK_DTE_PT_ADDRESS_MASK) |
		 ((pt_dma & GENMASK_ULL(35, 32)) >> 24) |
		 ((pt_dma & GENMASK_ULL(39, 36)) >> 32);
	return (pt_dma & GENMASK_ULL(31, 4)) | RK_DTE_PT_VALID;
}

static phys_addr_t rk_dte_pt_address(u32 dte)
{
	return (phys_addr_t)dte & RK_DTE_PT_ADDRESS_MASK;
}

static phys_addr_t rk_dte_pt_address_v2(u32 dte)
{
	u64 dte_v2 = dte;

	dte_v2 = ((dte_v2 & 0xf0) << 32) | ((dte_v2 & 0xf00) << 24) |
		 (dte_v2 & RK_DTE_PT_ADDRESS_MASK);
	return (phys_addr_t)dte_v2;
}

static u32 rk_mk_pte(phys_addr_t page, int prot)
{
	u32 flags = 0;

	flags |= (prot & 1) ? RK_PTE_PAGE_READABLE : 0;
	flags |= (prot & 2) ? RK_PTE_PAGE_WRITABLE : 0;
	page &= RK_PTE_PAGE_ADDRESS_MASK;
	return page | flags | RK_PTE_PAGE_VALID;
}

static u32 rk_mk_pte_v2(phys_addr_t page, int prot)
{
	u32 flags = 0;

	flags |= (prot & 1) ? RK_PTE_PAGE_READABLE : 0;
	flags |= (prot & 2) ? RK_PTE_PAGE_WRITABLE : 0;
	return rk_mk_dte_v2(page) | flags;
}

static u32 rkp_mk_dte(dma_addr_t a) { return v2 ? rk_mk_dte_v2(a) : rk_mk_dte(a); }
static u32 rkp_mk_pte(phys_addr_t p, int prot) { return v2 ? rk_mk_pte_v2(p, prot) : rk_mk_pte(p, prot); }
static phys_addr_t rkp_pt_address(u32 e) { return v2 ? rk_dte_pt_address_v2(e) : rk_dte_pt_address(e); }
static bool entry_valid(u32 e) { return e & RK_DTE_PT_VALID; }
static u32 rk_iova_dte_index(u32 iova) { return (iova & RK_IOVA_DTE_MASK) >> RK_IOVA_DTE_SHIFT; }
static u32 rk_iova_pte_index(u32 iova) { return (iova & RK_IOVA_PTE_MASK) >> RK_IOVA_PTE_SHIFT; }

/* rk_table_flush(): dma_sync_single_for_device(dma_dev, dma, count * 4, DMA_TO_DEVICE). */
static void rk_table_flush(dma_addr_t dma, unsigned int count)
{
	dma_sync_single_for_device(dev, dma, count * sizeof(u32), DMA_TO_DEVICE);
}

/* Print the encodings of each address of the `encode` parameter (compared with the oracle). */
static int print_encodings(void)
{
	char *buf, *cur, *item;
	unsigned int n = 0;
	int ret = 0;

	if (!encode || !*encode)
		return 0;
	buf = kstrdup(encode, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	cur = buf;
	while ((item = strsep(&cur, ",")) != NULL) {
		unsigned long long a;
		u32 p1, p2;

		if (!*item)
			continue;
		if (kstrtoull(item, 0, &a) || ++n > 64) {
			out("error param=encode reason=syntax item=%u", n);
			ret = -EINVAL;
			break;
		}
		p1 = rk_mk_pte((phys_addr_t)a, perm);
		p2 = rk_mk_pte_v2((phys_addr_t)a, perm);
		out("encode addr=0x%llx v1_dte=0x%08x v2_dte=0x%08x v1_pte=0x%08x v2_pte=0x%08x v1_addr=0x%llx v2_addr=0x%llx v2_decode=0x%llx",
		    a, rk_mk_dte((dma_addr_t)a), rk_mk_dte_v2((dma_addr_t)a), p1, p2,
		    (u64)rk_dte_pt_address(p1), (u64)rk_dte_pt_address_v2(p2),
		    (u64)rk_dte_pt_address_v2((u32)a));
	}
	kfree(buf);
	return ret;
}

/* --- Allocation as the release's driver does it --- */

static void *alloc_table(gfp_t base)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 10, 0)
	/* <= 6.9: get_zeroed_page(GFP_KERNEL | gfp) / get_zeroed_page(GFP_ATOMIC | gfp). */
	return (void *)get_zeroed_page(base | zone_flags);
#else
	/* 6.10+: iommu_alloc_page*() = alloc_pages_node(gfp | __GFP_ZERO [| __GFP_COMP]). */
	struct page *p = alloc_pages(base | zone_flags | __GFP_ZERO, 0);

	return p ? page_address(p) : NULL;
#endif
}

static void free_table(void *va)
{
	free_page((unsigned long)va);
}

/* --- Reading memory as the device sees it --- */

/* True if [phys, phys + len) is System RAM in the kernel's linear map. */
static bool phys_is_ram(phys_addr_t phys, size_t len)
{
	if (!pfn_is_map_memory(PHYS_PFN(phys)))
		return false;
	return region_intersects(phys, len, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE) ==
	       REGION_INTERSECTS;
}

/* Read a u32 the way a bus master reads it: from physical memory at `phys`. */
static bool device_read32(phys_addr_t phys, u32 *val)
{
	if (!phys_is_ram(phys, sizeof(u32)))
		return false;
	*val = READ_ONCE(*(u32 *)phys_to_virt(phys));
	return true;
}

static const char *placement(phys_addr_t p)
{
	return p >= 0x100000000ULL ? "high" : "low";
}

/* --- Parameters --- */

static int parse_iovas(void)
{
	char *buf, *cur, *item;
	int ret = 0;

	buf = kstrdup(iovas, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	cur = buf;
	while ((item = strsep(&cur, ",")) != NULL) {
		char *a, *where, *cnt;
		unsigned long long v;
		unsigned int pages = 1;
		struct probe_iova *m;

		if (!*item)
			continue;
		if (nmaps >= MAX_IOVAS) {
			out("error param=iovas reason=too_many max=%d", MAX_IOVAS);
			ret = -EINVAL;
			break;
		}
		a = strsep(&item, ":");
		where = strsep(&item, ":");
		cnt = strsep(&item, ":");
		if (!a || kstrtoull(a, 0, &v) || v > 0xffffffffULL || (v & 0xfff) || !where ||
		    (strcmp(where, "low") && strcmp(where, "high")) || item ||
		    (cnt && (kstrtouint(cnt, 0, &pages) || !pages || pages > MAX_PAGES_PER_IOVA))) {
			out("error param=iovas reason=syntax item=%d", nmaps);
			ret = -EINVAL;
			break;
		}
		if (rk_iova_dte_index(v) != rk_iova_dte_index(v + (u64)(pages - 1) * SPAGE_SIZE) ||
		    v + (u64)pages * SPAGE_SIZE > 0x100000000ULL) {
			out("error param=iovas reason=crosses_dte item=%d", nmaps);
			ret = -EINVAL;
			break;
		}
		m = &maps[nmaps++];
		m->iova = (u32)v;
		m->high = !strcmp(where, "high");
		m->pages = pages;
	}
	kfree(buf);
	if (!ret && !nmaps) {
		out("error param=iovas reason=empty");
		ret = -EINVAL;
	}
	return ret;
}

static int parse_params(void)
{
	if (!strcmp(format, "v1"))
		v2 = false;
	else if (!strcmp(format, "v2"))
		v2 = true;
	else {
		out("error param=format reason=unknown");
		return -EINVAL;
	}
	if (!strcmp(gfp, "none"))
		zone_flags = 0;
	else if (!strcmp(gfp, "dma32"))
		zone_flags = GFP_DMA32;
	else if (!strcmp(gfp, "dma"))
		zone_flags = GFP_DMA;
	else {
		out("error param=gfp reason=unknown");
		return -EINVAL;
	}
	if (mask_bits < 24 || mask_bits > 64) {
		out("error param=mask_bits reason=range");
		return -EINVAL;
	}
	if (dt_reach < 12 || dt_reach > 64 || pt_reach < 12 || pt_reach > 64) {
		out("error param=reach reason=range");
		return -EINVAL;
	}
	if (perm > 3) {
		out("error param=perm reason=range");
		return -EINVAL;
	}
	return parse_iovas();
}

static bool beyond_reach(phys_addr_t a, unsigned int bits)
{
	return bits < 64 && (u64)a >= (1ULL << bits);
}

/* --- The driver's sequence --- */

/* rk_iommu_domain_alloc_paging(): DT page, dma_map_single(DMA_TO_DEVICE). */
static int domain_alloc(void)
{
	dt = alloc_table(GFP_KERNEL);
	if (!dt) {
		out("error step=dt_alloc reason=nomem");
		return -ENOMEM;
	}
	dt_dma = dma_map_single(dev, dt, SPAGE_SIZE, DMA_TO_DEVICE);
	if (dma_mapping_error(dev, dt_dma)) {
		out("table kind=dt phys=0x%llx dma=none bounced=0 map=error",
		    (u64)virt_to_phys(dt));
		free_table(dt);
		dt = NULL;
		return -ENOMEM;
	}
	dt_mapped = true;
	out("table kind=dt phys=0x%llx dma=0x%llx bounced=%d zone=%s map=ok",
	    (u64)virt_to_phys(dt), (u64)dt_dma, (u64)dt_dma != (u64)virt_to_phys(dt),
	    placement(virt_to_phys(dt)));
	return 0;
}

/*
 * rk_dte_get_page_table(): allocate and map a PT on first use, write and flush the DTE, and
 * return phys_to_virt(rkp_pt_address(dte)). Returns NULL (with a reason line) where the driver
 * would return an error or a pointer the probe must not write through.
 */
static u32 *dte_get_page_table(u32 iova, phys_addr_t *pt_phys_out)
{
	u32 idx = rk_iova_dte_index(iova);
	u32 dte = dt[idx];
	phys_addr_t pt_phys;
	void *page;
	dma_addr_t pt_dma;
	struct probe_pt *pt = &pts[idx];
	bool safe;

	if (!entry_valid(dte)) {
		page = alloc_table(GFP_ATOMIC);
		if (!page) {
			out("error step=pt_alloc dte=%u reason=nomem", idx);
			return NULL;
		}
		pt_dma = dma_map_single(dev, page, SPAGE_SIZE, DMA_TO_DEVICE);
		if (dma_mapping_error(dev, pt_dma)) {
			out("table kind=pt dte=%u phys=0x%llx dma=none bounced=0 map=error", idx,
			    (u64)virt_to_phys(page));
			free_table(page);
			return NULL;
		}
		pt->cpu = page;
		pt->dma = pt_dma;
		pt->mapped = true;
		dte = rkp_mk_dte(pt_dma);
		dt[idx] = dte;
		rk_table_flush(dt_dma + idx * sizeof(u32), 1);
		pt_phys = rkp_pt_address(dte);
		safe = pt_phys == virt_to_phys(page) || pt_phys == (phys_addr_t)pt_dma;
		out("table kind=pt dte=%u phys=0x%llx dma=0x%llx bounced=%d zone=%s map=ok dte_value=0x%08x cpu=0x%llx unsafe=%d",
		    idx, (u64)virt_to_phys(page), (u64)pt_dma,
		    (u64)pt_dma != (u64)virt_to_phys(page), placement(virt_to_phys(page)), dte,
		    (u64)pt_phys, !safe);
	}
	pt_phys = rkp_pt_address(dte);
	*pt_phys_out = pt_phys;
	if (!pt->mapped)
		return NULL;
	safe = pt_phys == virt_to_phys(pt->cpu) || pt_phys == (phys_addr_t)pt->dma;
	if (!safe || !phys_is_ram(pt_phys, SPAGE_SIZE))
		return NULL;
	return (u32 *)phys_to_virt(pt_phys);
}

/* rk_iommu_map() for one mapping: PTEs for each page, one flush of pte_total entries. */
static void map_one(struct probe_iova *m)
{
	phys_addr_t pt_phys = 0, pte_dma;
	u32 *page_table;
	unsigned int i;
	u32 pidx = rk_iova_pte_index(m->iova);
	gfp_t page_gfp = m->high ? GFP_HIGHUSER_MOVABLE : (GFP_KERNEL | GFP_DMA32);

	for (i = 0; i < m->pages; i++) {
		phys_addr_t p;

		m->backing[i] = alloc_pages(page_gfp | __GFP_ZERO, 0);
		if (!m->backing[i]) {
			out("error step=page_alloc iova=0x%08x reason=nomem", m->iova + i * SPAGE_SIZE);
			return;
		}
		p = page_to_phys(m->backing[i]);
		out("page iova=0x%08x phys=0x%llx want=%s zone=%s", m->iova + i * SPAGE_SIZE,
		    (u64)p, m->high ? "high" : "low", placement(p));
	}

	page_table = dte_get_page_table(m->iova, &pt_phys);
	if (!page_table) {
		out("map iova=0x%08x pages=%u written=0 reason=%s", m->iova, m->pages,
		    pts[rk_iova_dte_index(m->iova)].mapped ? "unsafe_cpu_pointer" : "no_page_table");
		return;
	}
	pte_dma = pt_phys + pidx * sizeof(u32);
	for (i = 0; i < m->pages; i++) {
		u32 *pte_addr = &page_table[pidx + i];

		if (entry_valid(*pte_addr)) {
			out("map iova=0x%08x pages=%u written=%u reason=already_mapped", m->iova,
			    m->pages, i);
			/* The driver invalidates what it wrote and returns -EADDRINUSE. */
			while (i--)
				page_table[pidx + i] &= ~RK_PTE_PAGE_VALID;
			rk_table_flush(pte_dma, m->pages);
			return;
		}
		*pte_addr = rkp_mk_pte(page_to_phys(m->backing[i]), perm);
	}
	rk_table_flush(pte_dma, m->pages);
	out("map iova=0x%08x pages=%u written=%u pte_dma=0x%llx first_pte=0x%08x", m->iova,
	    m->pages, m->pages, (u64)pte_dma, page_table[pidx]);
}

/* A walker with the given reach translating `iova`, reading memory as the device sees it. */
static void walk_one(u32 iova, phys_addr_t expected, unsigned int *ok, unsigned int *faults)
{
	phys_addr_t dt_base, pt_base, page;
	u32 dte, pte, dte_addr_reg;

	/* DTE_ADDR = mk_dtentries(dt_dma); the hardware decodes it with pt_address. */
	dte_addr_reg = rkp_mk_dte(dt_dma);
	dt_base = rkp_pt_address(dte_addr_reg);
	if (beyond_reach(dt_base, dt_reach)) {
		out("walk iova=0x%08x result=BUS_ERROR level=dt addr=0x%llx reason=reach expected=0x%llx",
		    iova, (u64)dt_base, (u64)expected);
		(*faults)++;
		return;
	}
	if (!device_read32(dt_base + rk_iova_dte_index(iova) * sizeof(u32), &dte)) {
		out("walk iova=0x%08x result=BUS_ERROR level=dt addr=0x%llx reason=no_ram expected=0x%llx",
		    iova, (u64)dt_base, (u64)expected);
		(*faults)++;
		return;
	}
	if (!entry_valid(dte)) {
		out("walk iova=0x%08x result=PAGE_FAULT level=dte dte=0x%08x expected=0x%llx", iova,
		    dte, (u64)expected);
		(*faults)++;
		return;
	}
	pt_base = rkp_pt_address(dte);
	if (beyond_reach(pt_base, pt_reach)) {
		out("walk iova=0x%08x result=BUS_ERROR level=pt addr=0x%llx reason=reach dte=0x%08x expected=0x%llx",
		    iova, (u64)pt_base, dte, (u64)expected);
		(*faults)++;
		return;
	}
	if (!device_read32(pt_base + rk_iova_pte_index(iova) * sizeof(u32), &pte)) {
		out("walk iova=0x%08x result=BUS_ERROR level=pt addr=0x%llx reason=no_ram dte=0x%08x expected=0x%llx",
		    iova, (u64)pt_base, dte, (u64)expected);
		(*faults)++;
		return;
	}
	if (!entry_valid(pte)) {
		out("walk iova=0x%08x result=PAGE_FAULT level=pte dte=0x%08x pte=0x%08x expected=0x%llx",
		    iova, dte, pte, (u64)expected);
		(*faults)++;
		return;
	}
	page = rkp_pt_address(pte);
	if (page != expected) {
		out("walk iova=0x%08x result=WRONG_PAGE page=0x%llx dte=0x%08x pte=0x%08x expected=0x%llx",
		    iova, (u64)page, dte, pte, (u64)expected);
		(*faults)++;
		return;
	}
	out("walk iova=0x%08x result=ok page=0x%llx dte=0x%08x pte=0x%08x expected=0x%llx", iova,
	    (u64)page, dte, pte, (u64)expected);
	(*ok)++;
}

static int rkprobe_show(struct seq_file *s, void *v)
{
	seq_write(s, report, report_len);
	return 0;
}

static void teardown(void)
{
	unsigned int i, j;

	for (i = 0; i < nmaps; i++)
		for (j = 0; j < maps[i].pages; j++)
			if (maps[i].backing[j])
				__free_pages(maps[i].backing[j], 0);
	/* rk_iommu_domain_free(): per valid DTE unmap rkp_pt_address(dte), free its page; then DT. */
	for (i = 0; i < NUM_DT_ENTRIES; i++) {
		struct probe_pt *pt = &pts[i];

		if (!pt->mapped)
			continue;
		dma_unmap_single(dev, pt->dma, SPAGE_SIZE, DMA_TO_DEVICE);
		if ((u64)pt->dma != (u64)virt_to_phys(pt->cpu)) {
			/* The driver frees phys_to_virt(bounce) and leaks the original. */
			pr_info("rkprobe: leak kind=pt dte=%u phys=0x%llx dma=0x%llx driver_frees=0x%llx\n",
				i, (u64)virt_to_phys(pt->cpu), (u64)pt->dma, (u64)pt->dma);
			if (!leak)
				free_table(pt->cpu);
		} else {
			free_table(pt->cpu);
		}
		pt->mapped = false;
	}
	if (dt_mapped)
		dma_unmap_single(dev, dt_dma, SPAGE_SIZE, DMA_TO_DEVICE);
	dt_mapped = false;
	if (dt)
		free_table(dt);
	dt = NULL;
}

static int __init rkprobe_init(void)
{
	struct platform_device_info info = {
		.name = "rkprobe",
		.id = PLATFORM_DEVID_NONE,
		.dma_mask = DMA_BIT_MASK(32),
	};
	unsigned int i, j, ok = 0, faults = 0, tables = 1;
	int ret;

	report = kzalloc(REPORT_SIZE, GFP_KERNEL);
	if (!report)
		return -ENOMEM;
	out("begin version=%d release=%s format=%s gfp=%s mask_bits=%u dt_reach=%u pt_reach=%u perm=%u page_size=%lu",
	    RKPROBE_FORMAT_VERSION, init_utsname()->release, format, gfp, mask_bits, dt_reach,
	    pt_reach, perm, PAGE_SIZE);
	ret = parse_params();
	if (!ret)
		ret = print_encodings();
	if (ret)
		goto fail;
	if (PAGE_SIZE != SPAGE_SIZE) {
		out("error step=init reason=page_size");
		ret = -EINVAL;
		goto fail;
	}
	/*
	 * A platform device with no firmware node: no IOMMU in front of it, dma_ops NULL, so the
	 * DMA API is dma-direct (+ SWIOTLB) like the RK3568 IOMMU's own device, and non-coherent
	 * (cache maintenance on sync) like it (its DT node has no dma-coherent).
	 */
	pdev = platform_device_register_full(&info);
	if (IS_ERR(pdev)) {
		ret = PTR_ERR(pdev);
		pdev = NULL;
		out("error step=device reason=register ret=%d", ret);
		goto fail;
	}
	dev = &pdev->dev;
	/* The driver ignores the return value; the probe reports it. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(mask_bits));
	out("device name=%s dma_mask=0x%llx set_mask=%d coherent=%d swiotlb=%d",
	    dev_name(dev), (u64)dma_get_mask(dev), ret, dev_is_dma_coherent(dev),
	    IS_ENABLED(CONFIG_SWIOTLB));
	ret = domain_alloc();
	if (ret)
		goto fail;
	for (i = 0; i < nmaps; i++)
		map_one(&maps[i]);
	for (i = 0; i < NUM_DT_ENTRIES; i++)
		tables += pts[i].mapped;
	for (i = 0; i < nmaps; i++)
		for (j = 0; j < maps[i].pages; j++)
			if (maps[i].backing[j])
				walk_one(maps[i].iova + j * SPAGE_SIZE,
					 page_to_phys(maps[i].backing[j]), &ok, &faults);
	out("end tables=%u iovas=%u ok=%u faults=%u lines=%u", tables, nmaps, ok, faults,
	    report_lines + 1);
	proc = proc_create_single_data("rkprobe", 0444, NULL, rkprobe_show, NULL);
	if (!proc)
		pr_warn("rkprobe: cannot create /proc/rkprobe; the report is in the kernel log\n");
	return 0;
fail:
	out("end status=error ret=%d lines=%u", ret, report_lines + 1);
	teardown();
	if (pdev)
		platform_device_unregister(pdev);
	kfree(report);
	report = NULL;
	return ret;
}

static void __exit rkprobe_exit(void)
{
	if (proc)
		proc_remove(proc);
	teardown();
	platform_device_unregister(pdev);
	kfree(report);
	pr_info("rkprobe: unloaded\n");
}

module_init(rkprobe_init);
module_exit(rkprobe_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("rkhil probe: Rockchip IOMMU table allocation, DMA mapping and walk replay");
