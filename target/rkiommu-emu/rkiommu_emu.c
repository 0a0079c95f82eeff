// SPDX-License-Identifier: GPL-2.0
/*
 * rkiommu_emu: an emulated Rockchip IOMMU for the REAL rockchip-iommu driver (issue 15).
 *
 * The boot device tree (runner/qemu/iommu_dtb.ts) puts each IOMMU's register banks (0x100
 * bytes each) in a reserved no-map region of guest RAM, so the built-in rk_iommu driver binds
 * to an iommu@... node and reads and writes plain RAM through its device mapping. This module
 *
 * 1. serves that register file from spinning poller kthreads (one per CPU): they consume each
 *    COMMAND (the register starts at a sentinel, as ENABLE_PAGING is 0, and every command is
 *    taken with cmpxchg so none is seen twice), keeps STATUS, clears DTE_ADDR on FORCE_RESET,
 *    applies INT_CLEAR to RAWSTAT and keeps INT_STATUS = RAWSTAT & INT_MASK (the driver's IRQ
 *    handler reads INT_STATUS). It answers within microseconds, inside the driver's 1 ms stall
 *    and paging polls; it never printks on that path.
 * 2. walks the tables as the hardware would: DTE_ADDR decoded with the block's encoding, the
 *    directory entry and the page table entry read from PHYSICAL memory (so a table the driver
 *    bounced through SWIOTLB is read where the register points, zeroes and all), each level
 *    checked against the revision's address reach: v1.0 reads its directory only below 4 GiB
 *    (seed thread, Simon Xue: "v1.0 does not support placing the first-level page table above
 *    4 GB"; both revisions map 40-bit pages), v2.0 within 40 bits. An entry beyond reach is a
 *    BUS_ERROR, an invalid entry (or a missing permission) a page fault: PAGE_FAULT_ADDR, the
 *    RAWSTAT bit, STATUS bits, then the GIC SPI is set pending with irq_set_irqchip_state() so
 *    the real driver's handler runs and prints its own lines.
 * 3. binds a master driver ("rkhil,iommu-master") to each master node: it takes a runtime-PM
 *    reference (so the real driver enables its IOMMU: force reset, DTE_ADDR, paging), maps
 *    buffers through the DMA API (so the real driver allocates and maps its tables with this
 *    release's gfp flags and masks), asks the emulated device to read and write each IOVA and
 *    checks the data on the CPU side.
 *
 * Everything is reported in /proc/rkiommu_emu (format in README.md). Parameters:
 *   npages=N        pages each master maps (1..16, default 4)
 *   dt_reach_v1=32  address bits a v1.0 block reads its directory at      ([?] in research)
 *   pt_reach_v1=40  address bits a v1.0 block reads page tables/pages at  ([?] in research)
 *   dte_addr_v1=2   DTE_ADDR encoding a v1.0 block decodes (1: bits 31:12 only, 2: v2 nibbles)
 *   unmapped=0      also read one IOVA after unmapping it (the driver's page-fault path)
 */

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/io.h>
#include <linux/of.h>
#include <linux/of_address.h>
#include <linux/of_irq.h>
#include <linux/of_platform.h>
#include <linux/platform_device.h>
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/iommu.h>
#include <linux/pm_runtime.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/utsname.h>
#include <linux/sched.h>
#include <linux/version.h>
#include <linux/hrtimer.h>
#include <linux/percpu.h>
#include <linux/smp.h>

#define EMU_FORMAT_VERSION 1
#define MAX_INST 4
#define MAX_BANKS 4
#define MAX_PAGES 16
#define REPORT_SIZE (64 * 1024)

#define REG_DTE_ADDR 0x00
#define REG_STATUS 0x04
#define REG_COMMAND 0x08
#define REG_PAGE_FAULT_ADDR 0x0c
#define REG_ZAP_ONE_LINE 0x10
#define REG_INT_RAWSTAT 0x14
#define REG_INT_CLEAR 0x18
#define REG_INT_MASK 0x1c
#define REG_INT_STATUS 0x20
#define REG_AUTO_GATING 0x24

#define ST_PAGING_ENABLED BIT(0)
#define ST_PAGE_FAULT_ACTIVE BIT(1)
#define ST_STALL_ACTIVE BIT(2)
#define ST_IDLE BIT(3)
#define ST_REPLAY_BUFFER_EMPTY BIT(4)
#define ST_PAGE_FAULT_IS_WRITE BIT(5)
#define ST_STALL_NOT_ACTIVE BIT(31)
#define ST_RESET (ST_IDLE | ST_REPLAY_BUFFER_EMPTY | ST_STALL_NOT_ACTIVE)

#define CMD_ENABLE_PAGING 0
#define CMD_DISABLE_PAGING 1
#define CMD_ENABLE_STALL 2
#define CMD_DISABLE_STALL 3
#define CMD_ZAP_CACHE 4
#define CMD_PAGE_FAULT_DONE 5
#define CMD_FORCE_RESET 6
#define CMD_NONE 0x5eadc0deu /* sentinel: no command pending */

#define IRQ_PAGE_FAULT 0x1
#define IRQ_BUS_ERROR 0x2

static unsigned int npages = 4;
module_param(npages, uint, 0444);
static unsigned int dt_reach_v1 = 32;
module_param(dt_reach_v1, uint, 0444);
static unsigned int pt_reach_v1 = 40;
module_param(pt_reach_v1, uint, 0444);
static unsigned int dte_addr_v1 = 2;
module_param(dte_addr_v1, uint, 0444);
static unsigned int unmapped;
module_param(unmapped, uint, 0444);
/*
 * 0 (default): a translated page that is not memory is the master's own failed transfer; the
 * MMU's walk succeeded and it raises nothing (its BUS_ERROR is a table-walk read error, as the
 * Mali-400 MMU's READ_BUS_ERROR it shares the register file with). 1: the MMU raises BUS_ERROR.
 */
static unsigned int page_bus_error;
module_param(page_bus_error, uint, 0444);

struct emu_inst {
	struct device_node *np;
	phys_addr_t base;
	const char *revision;
	unsigned int dt_reach, pt_reach, dte_enc;
	int nbanks;
	u32 *regs[MAX_BANKS];
	phys_addr_t bank_phys[MAX_BANKS];
	int virq;
	unsigned long commands[7];
	unsigned long unknown_commands;
	unsigned long irqs;
	struct mutex walk_lock;
	spinlock_t lock; /* the register file's state changes */
};

static struct emu_inst insts[MAX_INST];
static int ninsts;
#define MAX_POLLERS 8
static struct task_struct *pollers[MAX_POLLERS];
static char *report;
static size_t report_len;
static DEFINE_MUTEX(report_lock);
static struct proc_dir_entry *proc_entry;

static __printf(1, 2) void out(const char *fmt, ...)
{
	va_list ap;

	mutex_lock(&report_lock);
	if (report && report_len < REPORT_SIZE - 1) {
		va_start(ap, fmt);
		report_len += vscnprintf(report + report_len, REPORT_SIZE - report_len, fmt, ap);
		va_end(ap);
	}
	mutex_unlock(&report_lock);
}

static inline u32 rd(u32 *regs, unsigned int off)
{
	return READ_ONCE(regs[off / 4]);
}

static inline void wr(u32 *regs, unsigned int off, u32 v)
{
	WRITE_ONCE(regs[off / 4], v);
}

/* One pass over a bank's registers; true when something happened. */
static bool serve_bank(struct emu_inst *in, u32 *r)
{
	bool busy = false;
	u32 cmd = rd(r, REG_COMMAND);
	u32 clr = rd(r, REG_INT_CLEAR);
	u32 st;

	if (cmd != CMD_NONE && cmpxchg(&r[REG_COMMAND / 4], cmd, CMD_NONE) == cmd) {
		busy = true;
		st = rd(r, REG_STATUS);
		if (cmd <= CMD_FORCE_RESET)
			in->commands[cmd]++;
		switch (cmd) {
		case CMD_ENABLE_PAGING:
			st |= ST_PAGING_ENABLED;
			break;
		case CMD_DISABLE_PAGING:
			st &= ~ST_PAGING_ENABLED;
			break;
		case CMD_ENABLE_STALL:
			st = (st | ST_STALL_ACTIVE) & ~ST_STALL_NOT_ACTIVE;
			break;
		case CMD_DISABLE_STALL:
			st = (st & ~ST_STALL_ACTIVE) | ST_STALL_NOT_ACTIVE;
			break;
		case CMD_ZAP_CACHE:
			break; /* the walker caches nothing */
		case CMD_PAGE_FAULT_DONE:
			st &= ~(ST_PAGE_FAULT_ACTIVE | ST_PAGE_FAULT_IS_WRITE);
			break;
		case CMD_FORCE_RESET:
			wr(r, REG_DTE_ADDR, 0);
			wr(r, REG_INT_RAWSTAT, 0);
			wr(r, REG_PAGE_FAULT_ADDR, 0);
			st = ST_RESET;
			break;
		default:
			in->unknown_commands++;
			break;
		}
		wr(r, REG_STATUS, st);
	}
	if (clr && cmpxchg(&r[REG_INT_CLEAR / 4], clr, 0) == clr) {
		busy = true;
		wr(r, REG_INT_RAWSTAT, rd(r, REG_INT_RAWSTAT) & ~clr);
	}
	wr(r, REG_INT_STATUS, rd(r, REG_INT_RAWSTAT) & rd(r, REG_INT_MASK));
	return busy;
}

/* Serve every bank of every instance once, each instance under its lock. */
static void serve_all(void)
{
	int i, b;

	for (i = 0; i < ninsts; i++) {
		unsigned long flags;

		spin_lock_irqsave(&insts[i].lock, flags);
		for (b = 0; b < insts[i].nbanks; b++)
			serve_bank(&insts[i], insts[i].regs[b]);
		spin_unlock_irqrestore(&insts[i].lock, flags);
	}
}

/*
 * One poller per online CPU, each serving every instance (a command is taken by exactly one,
 * under the instance's lock). Whichever CPU the driver polls from, the poller bound there runs
 * while the driver sleeps in readx_poll_timeout (100 us steps, 1 ms bound), so the answer is
 * there when it wakes even when the host deschedules the other vCPU's thread for longer than
 * the driver's bound (a single poller on another vCPU missed the 1 ms on a loaded 2-core host).
 */
static int poller_fn(void *arg)
{
	while (!kthread_should_stop()) {
		serve_all();
		cpu_relax();
		cond_resched();
	}
	return 0;
}

/*
 * While the driver enables or disables an IOMMU (the master's runtime-PM get, the unload), a
 * per-CPU hrtimer also serves the registers every 25 us, less than the driver's shortest poll
 * sleep (usleep_range(26, 100) in readx_poll_timeout). When the host deschedules a vCPU's
 * thread for longer than the driver's 1 ms bound, the poller kthread gets no guest time before
 * the driver's wake-up; the expired hrtimers run in expiry order in one interrupt, ours (armed
 * earlier) before the driver's, so the answer is there when the driver reads again.
 */
#define TICK_NS 25000
static DEFINE_PER_CPU(struct hrtimer, tick_timer);
static atomic_t ticking = ATOMIC_INIT(0);

static enum hrtimer_restart tick_fn(struct hrtimer *t)
{
	if (!atomic_read(&ticking))
		return HRTIMER_NORESTART;
	serve_all();
	hrtimer_forward_now(t, ns_to_ktime(TICK_NS));
	return HRTIMER_RESTART;
}

static void tick_start_cpu(void *unused)
{
	hrtimer_start(this_cpu_ptr(&tick_timer), ns_to_ktime(TICK_NS), HRTIMER_MODE_REL_PINNED);
}

static void ticks_init(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
		hrtimer_setup(per_cpu_ptr(&tick_timer, cpu), tick_fn, CLOCK_MONOTONIC,
			      HRTIMER_MODE_REL_PINNED);
#else
		hrtimer_init(per_cpu_ptr(&tick_timer, cpu), CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED);
		per_cpu_ptr(&tick_timer, cpu)->function = tick_fn;
#endif
	}
}

static void ticks_on(void)
{
	atomic_set(&ticking, 1);
	on_each_cpu(tick_start_cpu, NULL, 1);
}

static void ticks_off(void)
{
	unsigned int cpu;

	atomic_set(&ticking, 0);
	for_each_possible_cpu(cpu)
		hrtimer_cancel(per_cpu_ptr(&tick_timer, cpu));
}

/* Read or write len bytes of physical memory (RAM only); 0 or -EFAULT (a bus error). */
static int phys_rw(u64 pa, void *buf, size_t len, bool write)
{
	void *va;

	if (len > PAGE_SIZE - offset_in_page(pa) || !pfn_valid(PHYS_PFN(pa)))
		return -EFAULT;
	va = memremap(pa & PAGE_MASK, PAGE_SIZE, MEMREMAP_WB);
	if (!va)
		return -EFAULT;
	if (write)
		memcpy(va + offset_in_page(pa), buf, len);
	else
		memcpy(buf, va + offset_in_page(pa), len);
	memunmap(va);
	return 0;
}

/* v2 entry / DTE_ADDR decoding (rk_dte_pt_address_v2), or v1 (bits 31:12). */
static u64 decode(u32 e, unsigned int enc)
{
	if (enc == 1)
		return e & 0xfffff000u;
	return ((u64)(e & 0xf0) << 32) | ((u64)(e & 0xf00) << 24) | (e & 0xfffff000u);
}

static bool beyond(u64 pa, unsigned int reach)
{
	return reach < 64 && (pa >> reach) != 0;
}

enum walk_result { W_OK, W_BUS_ERROR, W_PAGE_FAULT, W_NOT_PAGING, W_STALLED, W_MASTER_ERROR };
static const char *const walk_names[] = { "ok", "bus_error", "page_fault", "not_paging",
					  "stalled", "master_error" };

struct walk {
	u32 dte_addr;
	u64 dt, pt, page;
	u32 dte, pte;
	int level; /* 0: DTE_ADDR, 1: dte, 2: pte, 3: page */
	enum walk_result result;
	const char *irq; /* handled, unhandled, masked, none */
};

/* Raise `bits` in bank 0 and wait up to 500 ms for the driver's INT_CLEAR. */
static const char *raise_irq(struct emu_inst *in, u32 iova, u32 status, u32 bits)
{
	u32 *r = in->regs[0];
	unsigned long deadline, flags;

	spin_lock_irqsave(&in->lock, flags);
	wr(r, REG_PAGE_FAULT_ADDR, iova);
	wr(r, REG_STATUS, rd(r, REG_STATUS) | status);
	wr(r, REG_INT_RAWSTAT, rd(r, REG_INT_RAWSTAT) | bits);
	wr(r, REG_INT_STATUS, rd(r, REG_INT_RAWSTAT) & rd(r, REG_INT_MASK));
	spin_unlock_irqrestore(&in->lock, flags);
	if (!(rd(r, REG_INT_MASK) & bits))
		return "masked";
	in->irqs++;
	if (irq_set_irqchip_state(in->virq, IRQCHIP_STATE_PENDING, true))
		return "no_irqchip";
	deadline = jiffies + msecs_to_jiffies(500);
	while (time_before(jiffies, deadline)) {
		if (!(rd(r, REG_INT_RAWSTAT) & bits))
			return "handled";
		usleep_range(200, 400);
	}
	return "unhandled";
}

/* The device accesses len bytes at iova (within one page). */
static void device_access(struct emu_inst *in, u32 iova, bool write, void *buf, size_t len,
			  struct walk *w)
{
	u32 *r = in->regs[0];
	u64 pa;

	memset(w, 0, sizeof(*w));
	w->irq = "none";
	mutex_lock(&in->walk_lock);
	if (!(rd(r, REG_STATUS) & ST_PAGING_ENABLED)) {
		w->result = W_NOT_PAGING;
		goto done;
	}
	if (rd(r, REG_STATUS) & (ST_STALL_ACTIVE | ST_PAGE_FAULT_ACTIVE)) {
		w->result = W_STALLED;
		goto done;
	}
	w->dte_addr = rd(r, REG_DTE_ADDR);
	w->dt = decode(w->dte_addr, in->dte_enc);
	pa = w->dt + 4 * (iova >> 22);
	if (beyond(w->dt, in->dt_reach) || phys_rw(pa, &w->dte, 4, false))
		goto bus_error;
	w->level = 1;
	if (!(w->dte & 1))
		goto page_fault;
	w->pt = decode(w->dte, 2);
	pa = w->pt + 4 * ((iova >> 12) & 0x3ff);
	if (beyond(w->pt, in->pt_reach) || phys_rw(pa, &w->pte, 4, false))
		goto bus_error;
	w->level = 2;
	if (!(w->pte & 1) || !(w->pte & (write ? 4 : 2)))
		goto page_fault;
	w->page = decode(w->pte, 2);
	w->level = 3;
	if (beyond(w->page, in->pt_reach))
		goto bus_error;
	if (phys_rw(w->page + (iova & 0xfff), buf, len, write)) {
		/* The walk is done: the transfer to a page that is not memory is the master's. */
		if (page_bus_error)
			goto bus_error;
		w->result = W_MASTER_ERROR;
		goto done;
	}
	w->result = W_OK;
	goto done;
bus_error:
	w->result = W_BUS_ERROR;
	w->irq = raise_irq(in, iova, 0, IRQ_BUS_ERROR);
	goto done;
page_fault:
	w->result = W_PAGE_FAULT;
	w->irq = raise_irq(in, iova, ST_PAGE_FAULT_ACTIVE | (write ? ST_PAGE_FAULT_IS_WRITE : 0),
			   IRQ_PAGE_FAULT);
done:
	mutex_unlock(&in->walk_lock);
}

static struct emu_inst *inst_of(struct device_node *np)
{
	int i;

	for (i = 0; i < ninsts; i++)
		if (insts[i].np == np)
			return &insts[i];
	return NULL;
}

/* ---- the master ---------------------------------------------------------------------- */

struct master {
	struct device *dev;
	struct emu_inst *in;
	struct page *pages[MAX_PAGES];
	dma_addr_t iova[MAX_PAGES];
	unsigned int n;
	bool pm;
};

static void report_access(struct master *m, u32 iova, const char *op, struct walk *w,
			  const char *data)
{
	out("access dev=%s iova=0x%08x op=%s result=%s irq=%s level=%d dte_addr=0x%08x dt=0x%llx "
	    "dte=0x%08x pt=0x%llx pte=0x%08x page=0x%llx data=%s\n",
	    dev_name(m->dev), iova, op, walk_names[w->result], w->irq, w->level, w->dte_addr,
	    w->dt, w->dte, w->pt, w->pte, w->page, data);
}

static u8 pattern(unsigned int page, unsigned int i, bool dev)
{
	return (u8)((dev ? 0xa5 : 0x3c) ^ (page * 29) ^ (i * 7));
}

static void run_master(struct master *m)
{
	u8 buf[16], want[16];
	struct walk w;
	unsigned int p, i;

	for (p = 0; p < m->n; p++) {
		u32 iova = (u32)m->iova[p];
		u8 *cpu = page_address(m->pages[p]);
		const char *data;

		/* read: the device reads 16 bytes at 0x40 the CPU wrote before mapping */
		device_access(m->in, iova + 0x40, false, buf, sizeof(buf), &w);
		for (i = 0; i < sizeof(buf); i++)
			want[i] = pattern(p, i + 0x40, false);
		data = w.result != W_OK ? "-" : memcmp(buf, want, sizeof(buf)) ? "mismatch" : "match";
		report_access(m, iova + 0x40, "read", &w, data);
		/* write: the device writes 16 bytes at 0x80; the CPU checks after a sync */
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(p, i + 0x80, true);
		device_access(m->in, iova + 0x80, true, buf, sizeof(buf), &w);
		dma_sync_single_for_cpu(m->dev, m->iova[p], PAGE_SIZE, DMA_BIDIRECTIONAL);
		data = w.result != W_OK ? "-" : memcmp(cpu + 0x80, buf, sizeof(buf)) ? "mismatch" :
										     "match";
		dma_sync_single_for_device(m->dev, m->iova[p], PAGE_SIZE, DMA_BIDIRECTIONAL);
		report_access(m, iova + 0x80, "write", &w, data);
	}
	if (unmapped && m->n > 0) {
		u32 iova = (u32)m->iova[m->n - 1];

		dma_unmap_page(m->dev, m->iova[m->n - 1], PAGE_SIZE, DMA_BIDIRECTIONAL);
		__free_page(m->pages[m->n - 1]);
		m->n--;
		out("unmap dev=%s iova=0x%08x\n", dev_name(m->dev), iova);
		device_access(m->in, iova, false, buf, sizeof(buf), &w);
		report_access(m, iova, "read", &w, "-");
	}
}

static int master_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct device_node *iommu_np = of_parse_phandle(dev->of_node, "iommus", 0);
	struct iommu_domain *dom = iommu_get_domain_for_dev(dev);
	struct master *m;
	unsigned int p, i;
	int ret;

	m = devm_kzalloc(dev, sizeof(*m), GFP_KERNEL);
	if (!m) {
		of_node_put(iommu_np);
		return -ENOMEM;
	}
	m->dev = dev;
	m->in = inst_of(iommu_np);
	of_node_put(iommu_np);
	platform_set_drvdata(pdev, m);
	out("master dev=%s iommu=%llx emulated=%d domain=%s\n", dev_name(dev),
	    m->in ? (unsigned long long)m->in->base : 0ULL, m->in != NULL,
	    !dom ? "none" : dom->type == IOMMU_DOMAIN_IDENTITY ? "identity" :
	    dom->type == IOMMU_DOMAIN_UNMANAGED ? "unmanaged" : "dma");
	if (!m->in)
		return 0;
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(32));
	if (ret)
		out("error dev=%s what=dma_set_mask ret=%d\n", dev_name(dev), ret);
	pm_runtime_enable(dev);
	ticks_on();
	ret = pm_runtime_resume_and_get(dev);
	ticks_off();
	if (ret) {
		out("error dev=%s what=pm_runtime ret=%d\n", dev_name(dev), ret);
		pm_runtime_disable(dev);
		return 0;
	}
	m->pm = true;
	for (p = 0; p < min(npages, (unsigned int)MAX_PAGES); p++) {
		struct page *pg = alloc_page(GFP_KERNEL);
		dma_addr_t a;

		if (!pg)
			break;
		for (i = 0; i < PAGE_SIZE; i++)
			((u8 *)page_address(pg))[i] = pattern(p, i, false);
		a = dma_map_page(dev, pg, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
		if (dma_mapping_error(dev, a)) {
			out("error dev=%s what=dma_map_page page=0x%llx\n", dev_name(dev),
			    (unsigned long long)page_to_phys(pg));
			__free_page(pg);
			break;
		}
		m->pages[p] = pg;
		m->iova[p] = a;
		m->n++;
		out("map dev=%s iova=0x%08llx phys=0x%llx\n", dev_name(dev), (unsigned long long)a,
		    (unsigned long long)page_to_phys(pg));
	}
	run_master(m);
	return 0;
}

static void master_release(struct master *m)
{
	unsigned int p;

	for (p = 0; p < m->n; p++) {
		dma_unmap_page(m->dev, m->iova[p], PAGE_SIZE, DMA_BIDIRECTIONAL);
		__free_page(m->pages[p]);
	}
	m->n = 0;
	if (m->pm) {
		pm_runtime_put_sync(m->dev);
		pm_runtime_disable(m->dev);
		m->pm = false;
	}
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
static void master_remove(struct platform_device *pdev)
{
	master_release(platform_get_drvdata(pdev));
}
#else
static int master_remove(struct platform_device *pdev)
{
	master_release(platform_get_drvdata(pdev));
	return 0;
}
#endif

static const struct of_device_id master_of_match[] = {
	{ .compatible = "rkhil,iommu-master" },
	{}
};
MODULE_DEVICE_TABLE(of, master_of_match);

static struct platform_driver master_driver = {
	.probe = master_probe,
	.remove = master_remove,
	.driver = {
		.name = "rkhil_iommu_master",
		.of_match_table = master_of_match,
	},
};

/* ---- the emulator ---------------------------------------------------------------------- */

static int setup_inst(struct device_node *np)
{
	struct emu_inst *in = &insts[ninsts];
	struct resource res;
	int b, i;

	memset(in, 0, sizeof(*in));
	mutex_init(&in->walk_lock);
	spin_lock_init(&in->lock);
	in->np = np;
	if (of_property_read_string(np, "rkhil,revision", &in->revision))
		return -EINVAL;
	if (!strcmp(in->revision, "1.0")) {
		in->dt_reach = dt_reach_v1;
		in->pt_reach = pt_reach_v1;
		in->dte_enc = dte_addr_v1 == 1 ? 1 : 2;
	} else {
		in->dt_reach = 40;
		in->pt_reach = 40;
		in->dte_enc = 2;
	}
	for (b = 0; b < MAX_BANKS && !of_address_to_resource(np, b, &res); b++) {
		in->bank_phys[b] = res.start;
		in->regs[b] = memremap(res.start, resource_size(&res), MEMREMAP_WB);
		if (!in->regs[b])
			return -ENOMEM;
		in->nbanks = b + 1;
		/* The state after reset; COMMAND at the sentinel. */
		for (i = 0; i < resource_size(&res) / 4; i++)
			in->regs[b][i] = 0;
		wr(in->regs[b], REG_STATUS, ST_RESET);
		wr(in->regs[b], REG_COMMAND, CMD_NONE);
	}
	if (!in->nbanks)
		return -EINVAL;
	in->base = in->bank_phys[0];
	in->virq = of_irq_get(np, 0);
	if (in->virq <= 0)
		return in->virq ? in->virq : -EINVAL;
	of_node_get(np);
	ninsts++;
	out("instance name=%llx.iommu revision=%s banks=%d virq=%d hwirq=%lu dt_reach=%u "
	    "pt_reach=%u dte_addr=v%u\n", (unsigned long long)in->base, in->revision, in->nbanks,
	    in->virq, irqd_to_hwirq(irq_get_irq_data(in->virq)), in->dt_reach, in->pt_reach,
	    in->dte_enc);
	return 0;
}

static void teardown(void)
{
	int i, b, t;

	/*
	 * The driver disables each IOMMU when it runtime-suspends after the masters let go (stall,
	 * paging off, INT_MASK = 0, DTE_ADDR = 0, unstall): keep serving until every bank shows
	 * that, or 2 s.
	 */
	for (t = 0; t < 200; t++) {
		bool busy = false;

		for (i = 0; i < ninsts; i++)
			for (b = 0; b < insts[i].nbanks; b++) {
				u32 *r = insts[i].regs[b];

				if (rd(r, REG_DTE_ADDR) || rd(r, REG_INT_MASK) ||
				    (rd(r, REG_STATUS) & (ST_STALL_ACTIVE | ST_PAGING_ENABLED)))
					busy = true;
			}
		if (!busy)
			break;
		msleep(10);
	}
	ticks_off();
	for (i = 0; i < MAX_POLLERS; i++) {
		if (pollers[i])
			kthread_stop(pollers[i]);
		pollers[i] = NULL;
	}
	for (i = 0; i < ninsts; i++) {
		struct emu_inst *in = &insts[i];

		pr_info("rkiommu_emu: %llx.iommu: %lu commands, %lu interrupts raised\n",
			(unsigned long long)in->base, in->commands[0] + in->commands[1] +
			in->commands[2] + in->commands[3] + in->commands[4] + in->commands[5] +
			in->commands[6], in->irqs);
		for (b = 0; b < in->nbanks; b++)
			memunmap(in->regs[b]);
		of_node_put(in->np);
	}
	ninsts = 0;
}

static int report_show(struct seq_file *s, void *v)
{
	int i;

	mutex_lock(&report_lock);
	seq_write(s, report, report_len);
	mutex_unlock(&report_lock);
	/* Live counters of the register file: what the real driver asked of the hardware. */
	for (i = 0; i < ninsts; i++) {
		struct emu_inst *in = &insts[i];

		seq_printf(s, "stats name=%llx.iommu enable_paging=%lu disable_paging=%lu "
			   "enable_stall=%lu disable_stall=%lu zap=%lu page_fault_done=%lu "
			   "force_reset=%lu unknown=%lu irqs=%lu status=0x%08x dte_addr=0x%08x "
			   "int_mask=0x%08x\n", (unsigned long long)in->base, in->commands[0],
			   in->commands[1], in->commands[2], in->commands[3], in->commands[4],
			   in->commands[5], in->commands[6], in->unknown_commands, in->irqs,
			   rd(in->regs[0], REG_STATUS), rd(in->regs[0], REG_DTE_ADDR),
			   rd(in->regs[0], REG_INT_MASK));
	}
	return 0;
}

static int __init emu_init(void)
{
	struct device_node *np;
	unsigned int cpu;
	int ret = 0;

	ticks_init();
	report = kzalloc(REPORT_SIZE, GFP_KERNEL);
	if (!report)
		return -ENOMEM;
	out("rkiommu-emu %d release=%s npages=%u dt_reach_v1=%u pt_reach_v1=%u dte_addr_v1=%u "
	    "unmapped=%u page_bus_error=%u\n", EMU_FORMAT_VERSION, init_utsname()->release, npages,
	    dt_reach_v1, pt_reach_v1, dte_addr_v1, unmapped, page_bus_error);
	for_each_node_with_property(np, "rkhil,revision") {
		if (ninsts == MAX_INST)
			break;
		ret = setup_inst(np);
		if (ret) {
			out("error what=instance node=%pOF ret=%d\n", np, ret);
			of_node_put(np);
			goto fail;
		}
	}
	for_each_online_cpu(cpu) {
		struct task_struct *t;

		if (cpu >= MAX_POLLERS)
			break;
		t = kthread_create_on_cpu(poller_fn, NULL, cpu, "rkiommu-emu/%u");
		if (IS_ERR(t)) {
			ret = PTR_ERR(t);
			goto fail;
		}
		pollers[cpu] = t;
		wake_up_process(t);
	}
	proc_entry = proc_create_single("rkiommu_emu", 0444, NULL, report_show);
	ret = platform_driver_register(&master_driver);
	if (ret)
		goto fail_proc;
	out("end status=ok instances=%d\n", ninsts);
	return 0;
fail_proc:
	proc_remove(proc_entry);
fail:
	teardown();
	kfree(report);
	return ret;
}

static void __exit emu_exit(void)
{
	ticks_on();
	platform_driver_unregister(&master_driver);
	teardown(); /* stops the ticks before the registers are unmapped */
	proc_remove(proc_entry);
	pr_info("rkiommu_emu: unloaded\n");
	kfree(report);
}

module_init(emu_init);
module_exit(emu_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("rkhil: emulated Rockchip IOMMU and a DMA master for the real rk_iommu driver");
